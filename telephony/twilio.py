"""Everything Twilio-specific (protocol reference B4-B7): webhooks, X-Twilio-Signature, TwiML, status codes, and the
REST client (through the `twilio` library's async client).

TwiML comes from the library's own builder (`VoiceResponse`), which escapes every attribute and text.
`CarrierCredentials.api_base_url` replaces https://api.twilio.com so tests can use the fake carrier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from core.call_events import CarrierCredentials
from telephony.base import (
    AnswerWebhook,
    CallOutcome,
    Carrier,
    CarrierClient,
    CarrierError,
    MachineDetection,
    MediaFormat,
    NonceCache,
    OutboundCallRequest,
    OutboundCallResult,
    SignatureResult,
    StatusUpdate,
    WarmTransfer,
    check_digits,
    float_or_none,
)
from telephony.numbers import to_e164

STATUS_OUTCOMES: dict[str, CallOutcome] = {
    "completed": CallOutcome.COMPLETED, "busy": CallOutcome.BUSY, "no-answer": CallOutcome.NO_ANSWER,
    "failed": CallOutcome.FAILED, "canceled": CallOutcome.CANCELED,
}


# -- TwiML ----------------------------------------------------------------------------------------------------

def twiml_stream(ws_url: str, token: str, status_callback: str | None) -> str:
    """<Connect><Stream> (bidirectional). Twilio drops query strings from the URL, so the token is a <Parameter>."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=ws_url, status_callback=status_callback,
                            status_callback_method="POST" if status_callback else None)
    stream.parameter(name="token", value=token)
    response.append(connect)
    return str(response.to_xml())


def twiml_reject_busy() -> str:
    """<Reject reason="busy"/>: the caller hears a busy tone and the call is not answered (admission control)."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response.to_xml())


def twiml_say_hangup(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response.to_xml())


def twiml_dial(target_e164: str, caller_id: str | None) -> str:
    response = VoiceResponse()
    response.dial(target_e164, caller_id=caller_id or None)
    return str(response.to_xml())


def twiml_conference(room: str, *, say: str | None = None, start_on_enter: bool, end_on_exit: bool) -> str:
    response = VoiceResponse()
    if say:
        response.say(say)
    dial = Dial()
    dial.conference(room, start_conference_on_enter=start_on_enter, end_conference_on_exit=end_on_exit)
    response.append(dial)
    return str(response.to_xml())


def twiml_hold(room: str) -> str:
    """startConferenceOnEnter=false: Twilio plays its hold music until the human's leg starts the conference."""
    return twiml_conference(room, start_on_enter=False, end_on_exit=True)


def twiml_join_room(room: str, whisper: str | None) -> str:
    return twiml_conference(room, say=whisper, start_on_enter=True, end_on_exit=True)


# -- signatures -----------------------------------------------------------------------------------------------

def twilio_signature_valid(auth_token: str, public_url: str, params: Any, signature: str | None) -> bool:
    """RequestValidator checks with and without the default port and compares in constant time."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(public_url, params, signature))


def twilio_signature(auth_token: str, public_url: str, params: Mapping[str, str]) -> str:
    """What Twilio would send (used by the simulator, a test double)."""
    return str(RequestValidator(auth_token).compute_signature(public_url, dict(params)))


# -- the carrier ----------------------------------------------------------------------------------------------

class Twilio(Carrier):
    name: ClassVar[Literal["twilio"]] = "twilio"
    answer_path = "voice"
    status_path = "status"
    call_id_field = "CallSid"
    signs_every_webhook = True
    supports_warm_transfer = True

    def check_signature(self, auth_token: str, public_url: str, method: str, form: Mapping[str, str],
                        headers: Mapping[str, str], nonces: NonceCache | None) -> SignatureResult:
        signature = headers.get("x-twilio-signature")
        if not signature:
            return SignatureResult.MISSING
        params = {} if method == "GET" else dict(form)
        valid = twilio_signature_valid(auth_token, public_url, params, signature)
        return SignatureResult.VALID if valid else SignatureResult.INVALID

    def parse_answer(self, form: Mapping[str, str], default_region: str) -> AnswerWebhook | None:
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return None
        return AnswerWebhook(call_sid, to_e164(form.get("From")), to_e164(form.get("To")))

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate | None:
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return None
        call_status = form.get("CallStatus", "")
        summary = f"Twilio status {call_status}"
        return StatusUpdate(call_sid, STATUS_OUTCOMES.get(call_status), summary, summary, call_status=call_status,
                            duration_s=float_or_none(form.get("CallDuration")))

    def parse_machine_detection(self, form: Mapping[str, str]) -> MachineDetection:
        return MachineDetection(form.get("AnsweredBy", "unknown") or "unknown", form.get("CallSid", ""))

    def media_format(self, requested: str | None, default_content_type: str) -> MediaFormat:
        return MediaFormat("audio/x-mulaw;rate=8000", 8000)  # Twilio streams only mu-law at 8 kHz

    def stream_document(self, ws_base_url: str, token: str, media: MediaFormat, status_callback: str | None) -> str:
        return twiml_stream(f"{ws_base_url}/ws/twilio", token, status_callback)

    def say_hangup_document(self, message: str) -> str:
        return twiml_say_hangup(message)

    def busy_document(self) -> str:
        return twiml_reject_busy()

    def dial_document(self, target_e164: str, caller_id: str | None) -> str:
        return twiml_dial(target_e164, caller_id)

    def hold_document(self, room: str) -> str:
        return twiml_hold(room)

    def join_room_document(self, room: str, whisper: str | None) -> str:
        return twiml_join_room(room, whisper)

    def rest_client(self, credentials: CarrierCredentials, http: httpx.AsyncClient, timeout_s: float
                    ) -> CarrierClient:
        return TwilioRestClient(credentials, timeout_s=timeout_s)


# -- REST -----------------------------------------------------------------------------------------------------

class TwilioRestClient:
    carrier: Literal["twilio", "vobiz"] = "twilio"

    def __init__(self, credentials: CarrierCredentials, timeout_s: float = 10.0) -> None:
        self.account_sid = credentials.account_id
        self._http = AsyncTwilioHttpClient(timeout=timeout_s)
        self._client = Client(credentials.account_id, credentials.auth_token, http_client=self._http)
        if credentials.api_base_url:
            self._client.api.base_url = credentials.api_base_url.rstrip("/")

    async def close(self) -> None:
        await self._http.close()

    async def _update(self, operation: str, call_sid: str, **fields: Any) -> bool:
        try:
            await self._client.calls(call_sid).update_async(**fields)
        except TwilioRestException as exc:
            if exc.status == 404 and exc.code in (20404, None):
                return False  # the call is already over
            raise CarrierError("twilio", operation, exc.status, str(exc.msg)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise CarrierError("twilio", operation, 0, str(exc)) from exc
        return True

    async def _create(self, fields: dict[str, Any]) -> OutboundCallResult:
        try:
            call = await self._client.calls.create_async(**fields)
        except TwilioRestException as exc:
            raise CarrierError("twilio", "create_call", exc.status, str(exc.msg)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise CarrierError("twilio", "create_call", 0, str(exc)) from exc
        return OutboundCallResult(carrier_call_id=str(call.sid), status=str(call.status or "queued"))

    async def hangup(self, carrier_call_id: str) -> bool:
        # Status=completed ends even an in-progress call; canceled would only affect queued/ringing ones.
        return await self._update("hangup", carrier_call_id, status="completed")

    async def redirect(self, carrier_call_id: str, document: str, document_url: str | None = None) -> bool:
        """Replaces the running TwiML (inline), which also ends the <Connect><Stream>."""
        return await self._update("redirect", carrier_call_id, twiml=document)

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        if not await self.redirect(carrier_call_id, twiml_dial(target_e164, caller_id)):
            raise CarrierError("twilio", "transfer", 404, "call already ended")

    async def warm_transfer(self, carrier_call_id: str, transfer: WarmTransfer) -> None:
        await self.redirect(carrier_call_id, twiml_hold(transfer.room))
        await self._create({
            "to": transfer.human_number, "from_": transfer.from_number, "timeout": transfer.ring_timeout_s,
            "twiml": twiml_join_room(transfer.room, transfer.whisper),
            "status_callback": transfer.status_callback_url, "status_callback_event": ["answered", "completed"],
        })

    async def send_digits(self, carrier_call_id: str, digits: str) -> bool:
        """Twilio's only REST way is TwiML `<Play digits>`, which replaces the running `<Connect><Stream>` and
        so ends the call's media stream: the voice server sends the tones in-band in the stream instead."""
        check_digits(digits)
        return False

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        fields: dict[str, Any] = {
            "to": request.to_number,
            "from_": request.from_number,
            "url": request.answer_url,
            "timeout": request.ring_timeout_s,
        }
        if request.status_callback_url:
            fields["status_callback"] = request.status_callback_url
            fields["status_callback_method"] = "POST"
            fields["status_callback_event"] = list(request.status_events)
        if request.time_limit_s:
            fields["time_limit"] = request.time_limit_s
        if request.machine_detection != "off":
            fields["machine_detection"] = "Enable" if request.machine_detection == "enable" else "DetectMessageEnd"
            if request.machine_detection_url:
                fields["async_amd"] = "true"
                fields["async_amd_status_callback"] = request.machine_detection_url
                fields["async_amd_status_callback_method"] = "POST"
        return await self._create(fields)
