"""Carrier callbacks for campaign calls: call status (Twilio StatusCallback, Vobiz hangup_url), answering-machine
detection (Twilio AsyncAmdStatusCallback, Vobiz machine_detection_url), and the voicemail document.

Every URL carries an HMAC of the attempt id, so a callback for an attempt can only come from someone we gave the
URL to (Vobiz signs callbacks only when the account has callback credentials). Twilio's own signature is checked
too whenever the organisation has Twilio credentials; a Vobiz signature, when present, must be valid.
Carriers retry callbacks: every handler is idempotent (marks and the final decision are unique inserts).

A machine verdict with the "leave a message" policy goes first to the call's in-call voicemail detector on the voice
server (when the campaign's agent detects voicemail in the call): the agent then leaves the campaign's message in its
own voice, after the beep. Otherwise the carrier is told to say the message (its own TTS) and hang up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from backend.campaigns.attempts import AttemptFinalizer, AttemptResult
from backend.campaigns.clock import Clock
from backend.campaigns.collections import ATTEMPTS, CALL_EVENTS, CAMPAIGNS
from backend.campaigns.coordination import Coordination, wall_now
from backend.campaigns.models import VoicemailPolicy
from backend.campaigns.outcomes import MESSAGE_END_ANSWERS, attempt_outcome, is_machine
from backend.db.collections import Db
from core.call_events import CarrierCredentials
from telephony.base import Carrier, CarrierError, CarrierName, MachineDetection, NonceCache, SignatureResult
from telephony.registry import CARRIERS, CarrierClients

log = logging.getLogger(__name__)

CallbackKind = Literal["status", "amd", "voicemail"]
CredentialsLookup = Callable[[str, str], Awaitable[CarrierCredentials | None]]
# (call id, the carrier's verdict, the message to leave) -> True when the call's in-call detector took it.
AmdRelay = Callable[[str, MachineDetection, str | None], Awaitable[bool]]


class CallbackRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CallbackUrls:
    def __init__(self, base_url: str, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the campaign callback secret needs 16+ characters")
        self.base_url = base_url.rstrip("/")
        self._key = hashlib.sha256(b"voiceagent/campaign-callbacks|" + secret.encode()).digest()

    def token(self, carrier: str, attempt_id: str) -> str:
        mac = hmac.new(self._key, f"{carrier}|{attempt_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def valid(self, carrier: str, attempt_id: str, token: str) -> bool:
        return hmac.compare_digest(self.token(carrier, attempt_id), token)

    def url(self, carrier: str, attempt_id: str, kind: CallbackKind) -> str:
        return f"{self.base_url}/api/v1/campaign-callbacks/{carrier}/{attempt_id}/{self.token(carrier, attempt_id)}/{kind}"


def _event_key(attempt_id: str, kind: str, form: Mapping[str, str]) -> str:
    # Carriers resend the same callback on a non-2xx answer: the same fields give the same key.
    parts = [attempt_id, kind, *(f"{k}={form.get(k, '')}" for k in (
        "CallStatus", "Event", "SequenceNumber", "AnsweredBy", "Machine", "HangupCauseCode", "Timestamp"))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class CallbackService:
    def __init__(self, db: Db, coord: Coordination, finalizer: AttemptFinalizer, urls: CallbackUrls,
                 carriers: CarrierClients, credentials: CredentialsLookup, clock: Clock, relay: AmdRelay) -> None:
        self._db = db
        self._coord = coord
        self._finalizer = finalizer
        self.urls = urls
        self._carriers = carriers
        self._credentials = credentials
        self._clock = clock
        self._relay = relay
        self._nonces = NonceCache()

    async def _authenticate(self, carrier_name: CarrierName, attempt_id: str, token: str, kind: CallbackKind,
                            form: Mapping[str, str], headers: Mapping[str, str], method: str
                            ) -> tuple[Carrier, dict[str, Any], CarrierCredentials | None]:
        carrier = CARRIERS.get(carrier_name)
        if carrier is None or not self.urls.valid(carrier_name, attempt_id, token):
            raise CallbackRejected(403, "invalid callback token")
        attempt = await self._db[ATTEMPTS].find_one({"_id": attempt_id})
        if attempt is None or attempt.get("carrier") != carrier_name:
            raise CallbackRejected(404, "unknown attempt")
        creds = await self._credentials(attempt["org_id"], carrier_name)
        url = self.urls.url(carrier_name, attempt_id, kind)
        # The signed URL authenticates a callback; a carrier signature is checked on top when present.
        result = carrier.webhook_authentic(creds, url, method, form, headers, self._nonces, require_signature=False)
        if result is not SignatureResult.VALID:
            raise CallbackRejected(403, f"{carrier_name} signature {result.value}")
        return carrier, attempt, creds

    async def _record(self, attempt: dict[str, Any], kind: str, form: Mapping[str, str]) -> bool:
        """Stores the raw callback once; False when it is a carrier retry of one already seen."""
        keep = {k: v for k, v in form.items() if k not in ("AccountSid", "ParentAuthID") and len(v) < 300}
        try:
            await self._db[CALL_EVENTS].insert_one({
                "_id": _event_key(attempt["_id"], kind, form), "attempt_id": attempt["_id"],
                "campaign_id": attempt["campaign_id"], "kind": kind, "at": wall_now(), "fields": keep})
        except DuplicateKeyError:
            return False
        return True

    async def on_status(self, carrier_name: CarrierName, attempt_id: str, token: str, form: Mapping[str, str],
                        headers: Mapping[str, str], method: str = "POST") -> None:
        carrier, attempt, _ = await self._authenticate(carrier_name, attempt_id, token, "status", form, headers,
                                                       method)
        update = carrier.parse_status(form)
        if update is None or update.outcome is None:
            return  # answered / ringing: nothing to decide yet
        # The call's slots wait on what follows: independent round trips go out together.
        _, amd = await asyncio.gather(self._record(attempt, "status", form),
                                      self._coord.get_mark(attempt_id, "amd"))
        answered_by = (amd or {}).get("answered_by") or form.get("AnsweredBy") or None
        outcome = attempt_outcome(update, answered_by)
        if outcome is None:
            return
        detail = f"{carrier_name} {update.call_status} {update.cause}".strip()
        left = await self._coord.get_mark(attempt_id, "voicemail") if outcome == "voicemail" else None
        if left is not None:
            detail = {"leave_message": "voicemail: message left", "in_call": "voicemail: message left by the agent"
                      }.get(left.get("action", ""), "voicemail: hung up")
        await self._finalizer.finalize(attempt_id, AttemptResult(
            outcome=outcome, detail=detail, answered_by=answered_by, duration_s=update.duration_s), attempt)

    async def on_amd(self, carrier_name: CarrierName, attempt_id: str, token: str, form: Mapping[str, str],
                     headers: Mapping[str, str], method: str = "POST") -> None:
        carrier, attempt, creds = await self._authenticate(carrier_name, attempt_id, token, "amd", form, headers,
                                                           method)
        await self._record(attempt, "amd", form)
        detection = carrier.parse_machine_detection(form)
        answered_by, call_id = detection.answered_by, detection.carrier_call_id
        await self._coord.put_mark(attempt_id, "amd", {"campaign_id": attempt["campaign_id"],
                                                       "answered_by": answered_by})
        if answered_by == "human" and attempt.get("call_id"):
            await self._relay(attempt["call_id"], detection, None)  # the held greeting may play at once
        if not is_machine(answered_by) or creds is None:
            return
        policy = await self._voicemail_policy(attempt)
        if not call_id:
            placed = await self._coord.get_mark(attempt_id, "placed")
            call_id = (placed or {}).get("carrier_call_id", "")
        if not call_id:
            return
        in_call = (policy.action == "leave_message" and bool(policy.message) and bool(attempt.get("call_id"))
                   and await self._relay(attempt["call_id"], detection, policy.message))
        # One action per call, even if the carrier repeats the AMD callback.
        if not await self._coord.put_mark(attempt_id, "voicemail", {"campaign_id": attempt["campaign_id"],
                                                                     "action": "in_call" if in_call else policy.action}):
            return
        if in_call:
            return  # the agent leaves the message itself
        client = self._carriers.for_credentials(creds)
        try:
            if policy.action == "hang_up" or not policy.message:
                await client.hangup(call_id)
            else:
                if answered_by not in MESSAGE_END_ANSWERS:
                    log.info("attempt %s: %s before the beep; leaving the message now", attempt_id, answered_by)
                # Inline for carriers that take markup, fetched from our voicemail URL by those that do not.
                await client.redirect(call_id, carrier.say_hangup_document(policy.message),
                                      self.urls.url(carrier_name, attempt_id, "voicemail"))
        except CarrierError as exc:
            log.warning("voicemail %s for attempt %s failed: %s", policy.action, attempt_id, exc)

    async def voicemail(self, carrier_name: CarrierName, attempt_id: str, token: str, form: Mapping[str, str],
                        headers: Mapping[str, str], method: str = "POST") -> str:
        carrier, attempt, _ = await self._authenticate(carrier_name, attempt_id, token, "voicemail", form, headers,
                                                       method)
        policy = await self._voicemail_policy(attempt)
        return carrier.say_hangup_document(policy.message or "")

    async def _voicemail_policy(self, attempt: dict[str, Any]) -> VoicemailPolicy:
        campaign = await self._db[CAMPAIGNS].find_one({"_id": attempt["campaign_id"]}, {"voicemail": 1})
        return VoicemailPolicy.model_validate((campaign or {}).get("voicemail") or {})
