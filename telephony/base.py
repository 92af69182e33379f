"""The carrier interface: what the voice server and the backend need from any carrier, in carrier-neutral types.

A carrier is one `Carrier` object (its webhooks, signatures, call markup, status codes) plus one `CarrierClient`
per account (its REST API). Nothing here holds app state, so both the voice server and the backend import it.
Adding a carrier means one module that implements both (telephony/twilio.py and telephony/vobiz.py are the two
examples) and one line in telephony/registry.py.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Literal, Protocol

import httpx
from pydantic import BaseModel, Field

from core.call_events import CarrierCredentials

CarrierName = Literal["twilio", "vobiz"]
StatusEvent = Literal["initiated", "ringing", "answered", "completed"]
ALL_STATUS_EVENTS: tuple[StatusEvent, ...] = ("initiated", "ringing", "answered", "completed")


class CarrierError(Exception):
    """A carrier REST call failed; `status` is the HTTP status (0 when the carrier was unreachable)."""

    def __init__(self, carrier: str, operation: str, status: int, detail: str) -> None:
        super().__init__(f"{carrier} {operation} failed (HTTP {status}): {detail[:300]}")
        self.carrier = carrier
        self.operation = operation
        self.status = status
        self.detail = detail


class CallOutcome(Enum):
    """How a call ended, as the carrier's status callback says. Each consumer projects it onto its own vocabulary
    (the voice server's end reasons, the dialer's attempt outcomes)."""

    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"  # the callee declined (Vobiz CALL_REJECTED); the dialer retries it like busy
    MACHINE = "machine"  # the carrier itself ended the call on a detected answering machine


@dataclass(frozen=True)
class StatusUpdate:
    """A parsed status callback. `outcome` is None while the call is not over."""

    carrier_call_id: str
    outcome: CallOutcome | None
    summary: str  # "Twilio status busy", "Vobiz hangup USER_BUSY"
    detail: str  # summary plus whatever else the carrier said about who ended it
    call_status: str = ""
    cause: str = ""
    duration_s: float | None = None


@dataclass(frozen=True)
class AnswerWebhook:
    """A parsed answer webhook. `ended` is True when the carrier sent its hang-up event to the answer URL."""

    carrier_call_id: str
    from_number: str
    to_number: str
    ended: bool = False


MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})


@dataclass(frozen=True)
class MachineDetection:
    answered_by: str  # Twilio's vocabulary: human, machine_start, machine_end_beep, ... (Vobiz maps onto it)
    carrier_call_id: str

    @property
    def machine(self) -> bool:
        return self.answered_by in MACHINE_ANSWERS

    @property
    def message_ended(self) -> bool:
        """Twilio DetectMessageEnd: the verdict came after the greeting (and its beep, if any)."""
        return self.answered_by.startswith("machine_end_")


@dataclass(frozen=True)
class MediaFormat:
    content_type: str
    sample_rate: int


class SignatureResult(Enum):
    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"
    REPLAYED = "replayed"


@dataclass
class NonceCache:
    """Remembers recent nonces so a captured signed request cannot be replayed (Vobiz nonces are random)."""

    max_entries: int = 10000
    window_s: float = 600.0

    def __post_init__(self) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, nonce: str) -> bool:
        now = time.monotonic()
        while self._seen and (len(self._seen) >= self.max_entries or next(iter(self._seen.values())) < now - self.window_s):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


class OutboundCallRequest(BaseModel):
    to_number: str = Field(description="E.164")
    from_number: str = Field(description="E.164 caller id owned by the account")
    answer_url: str
    status_callback_url: str | None = Field(default=None, description="Twilio StatusCallback / Vobiz hangup_url")
    status_events: list[StatusEvent] = Field(default_factory=lambda: list(ALL_STATUS_EVENTS))
    ring_timeout_s: int = Field(default=30, ge=5, le=600)
    time_limit_s: int | None = Field(default=None, ge=1, le=86400)
    machine_detection: Literal["off", "enable", "detect_message_end"] = "off"
    machine_detection_url: str | None = Field(default=None, description="Async AMD result callback")


class OutboundCallResult(BaseModel):
    carrier_call_id: str
    status: str = "queued"


@dataclass(frozen=True)
class WarmTransfer:
    """Hold the caller in `room`, call the human (who hears `whisper` first), bridge them when they join.
    Carriers that fetch their documents (Vobiz) get them from `hold_url` (the caller's) and `human_url` (the
    human's); carriers that take markup inline (Twilio) build it from the other fields."""

    room: str
    human_number: str
    from_number: str
    whisper: str | None
    status_callback_url: str
    hold_url: str | None = None
    human_url: str | None = None
    ring_timeout_s: int = 25


def warm_room(call_id: str) -> str:
    """The conference a warm transfer of this call uses (the same name in both legs' documents)."""
    return f"warm-{call_id}"


DIGITS = re.compile(r"^[0-9*#wW]{1,64}$")


def check_digits(digits: str) -> str:
    """Keypad digits to send: 0-9 * #, and w / W for a 0.5 s / 1 s pause (Vobiz's notation, also what Twilio's
    SendDigits takes). Anything else is refused before it reaches a carrier."""
    if not DIGITS.fullmatch(digits):
        raise ValueError(f"digits to send must be 1-64 of 0-9 * # w W, not {digits[:70]!r}")
    return digits


class CarrierClient(Protocol):
    """One account's REST API."""

    carrier: CarrierName

    async def close(self) -> None:
        ...

    async def hangup(self, carrier_call_id: str) -> bool:
        """Ends a live call. Returns False when the carrier says it had already ended."""
        ...

    async def redirect(self, carrier_call_id: str, document: str, document_url: str | None) -> bool:
        """Replaces the call's running document (and so its media stream). Carriers that take the markup inline
        use `document`; carriers that fetch it use `document_url` (which serves the same markup).
        Returns False when the call had already ended."""
        ...

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        """Replaces the call's running document with a dial to the target (`instructions_url` serves it)."""
        ...

    async def warm_transfer(self, carrier_call_id: str, transfer: WarmTransfer) -> None:
        """Only called when the carrier's `supports_warm_transfer` is True."""
        ...

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        ...

    async def send_digits(self, carrier_call_id: str, digits: str) -> bool:
        """Plays keypad tones to the other party through the REST API (`check_digits` first). Returns False when
        this carrier has no REST mechanism for a call on a media stream: the caller then sends them in-band, as
        tones in the stream's audio."""
        ...


class Carrier(ABC):
    """One carrier's webhooks and markup. Stateless: one instance per carrier, in telephony/registry.py."""

    name: ClassVar[CarrierName]
    answer_path: ClassVar[str]  # the voice server serves /{name}/{answer_path}
    status_path: ClassVar[str]  # and /{name}/{status_path}
    call_id_field: ClassVar[str]  # the webhook field with the carrier's call id
    # Twilio signs every webhook; Vobiz only when the account has callback credentials, so an operator may allow
    # missing Vobiz signatures for local development (VOBIZ_REQUIRE_SIGNATURE=false).
    signs_every_webhook: ClassVar[bool]
    supports_warm_transfer: ClassVar[bool] = False

    def answer_url(self, voice_base_url: str, call_id: str) -> str:
        return f"{voice_base_url.rstrip('/')}/{self.name}/{self.answer_path}?call_id={call_id}"

    def path(self, voice_base_url: str, *parts: str) -> str:
        return "/".join([voice_base_url.rstrip("/"), self.name, *parts])

    def webhook_authentic(self, credentials: CarrierCredentials | None, public_url: str, method: str,
                          form: Mapping[str, str], headers: Mapping[str, str], nonces: NonceCache | None,
                          require_signature: bool = True) -> SignatureResult:
        """VALID when the request may be processed: a signature that checks out (or, for a carrier that does not
        always sign, a missing one the operator allowed). Fails closed without credentials of this carrier: an
        unknown or unverified number, an organisation without credentials, a number of another carrier."""
        if credentials is None or credentials.carrier != self.name:
            return SignatureResult.MISSING
        result = self.check_signature(credentials.auth_token, public_url, method, form, headers, nonces)
        if result is SignatureResult.MISSING and not self.signs_every_webhook and not require_signature:
            return SignatureResult.VALID
        return result

    @abstractmethod
    def check_signature(self, auth_token: str, public_url: str, method: str, form: Mapping[str, str],
                        headers: Mapping[str, str], nonces: NonceCache | None) -> SignatureResult:
        """Checked against the *public* URL the carrier called, never the internal one behind a proxy."""

    @abstractmethod
    def parse_answer(self, form: Mapping[str, str], default_region: str) -> AnswerWebhook | None:
        """None when the webhook lacks the carrier's call id."""

    @abstractmethod
    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate | None:
        """None when the callback lacks the carrier's call id."""

    @abstractmethod
    def parse_machine_detection(self, form: Mapping[str, str]) -> MachineDetection:
        ...

    @abstractmethod
    def media_format(self, requested: str | None, default_content_type: str) -> MediaFormat:
        """The audio format of the media stream the answer asks for."""

    @abstractmethod
    def stream_document(self, ws_base_url: str, token: str, media: MediaFormat, status_callback: str | None) -> str:
        """Connects the call to our media WebSocket (bidirectional), carrying the call token."""

    @abstractmethod
    def say_hangup_document(self, message: str) -> str:
        ...

    @abstractmethod
    def busy_document(self) -> str:
        """Refuses the call as busy (admission control): the caller hears a busy tone, the carrier reports busy."""

    @abstractmethod
    def dial_document(self, target_e164: str, caller_id: str | None) -> str:
        ...

    @abstractmethod
    def hold_document(self, room: str) -> str:
        """Warm transfer, the caller: waits in `room` (the carrier's hold sound) until the human starts it."""

    @abstractmethod
    def join_room_document(self, room: str, whisper: str | None) -> str:
        """Warm transfer, the human: hears `whisper`, then enters `room`, which bridges them to the caller."""

    @abstractmethod
    def rest_client(self, credentials: CarrierCredentials, http: httpx.AsyncClient, timeout_s: float
                    ) -> CarrierClient:
        ...


def float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
