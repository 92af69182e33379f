"""What every carrier client offers, in carrier-neutral types."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, Field

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


class CarrierClient(Protocol):
    carrier: Literal["twilio", "vobiz"]

    async def hangup(self, carrier_call_id: str) -> bool:
        """Ends a live call. Returns False when the carrier says it had already ended."""
        ...

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        """Replaces the call's running document (and so the media stream) with a <Dial> to the target."""
        ...

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        ...
