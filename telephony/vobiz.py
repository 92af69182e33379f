"""Everything Vobiz-specific (protocol reference A1-A4): webhooks, V3/V2 signatures, answer XML, hang-up causes, and
the REST client over httpx.

Vobiz XML is built with the same builder as TwiML (`twilio.twiml`'s generic nodes), so every attribute and text is
escaped: a bare `&` silently drops a Vobiz call with "Invalid Answer XML". The REST API wants X-Auth-ID /
X-Auth-Token headers, JSON bodies, exact path casing and trailing slashes (`/Account/{auth_id}/Call/`; lowercase
paths get 401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from twilio.twiml.voice_response import VoiceResponse

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

VOBIZ_API_BASE = "https://api.vobiz.ai/api/v1"
VOBIZ_API_PREFIX = "/api/v1"

# Inbound stream formats Vobiz offers; `?format=` on the answer URL picks one per Vobiz application.
FORMATS: dict[str, tuple[str, int]] = {
    "mulaw_8k": ("audio/x-mulaw;rate=8000", 8000),
    "l16_8k": ("audio/x-l16;rate=8000", 8000),
    "l16_16k": ("audio/x-l16;rate=16000", 16000),
}
FINAL_STATUSES = {"completed", "busy", "failed", "timeout", "no-answer", "cancel", "canceled"}


# -- XML ------------------------------------------------------------------------------------------------------

def vobiz_stream(ws_url: str, content_type: str, status_callback: str | None) -> str:
    """keepCallAlive keeps the call up while the stream runs; audioTrack must stay inbound with bidirectional."""
    response = VoiceResponse()
    response.add_child("Stream", ws_url, bidirectional=True, audio_track="inbound", keep_call_alive=True,
                       content_type=content_type, status_callback_url=status_callback,
                       status_callback_method="POST" if status_callback else None)
    return str(response.to_xml())


def vobiz_hangup_busy() -> str:
    """<Hangup reason="busy"/> (Plivo-family verb, as above): refused as busy, before answering."""
    response = VoiceResponse()
    response.add_child("Hangup", reason="busy")
    return str(response.to_xml())


def vobiz_speak_hangup(message: str) -> str:
    # <Speak>/<Hangup> are the Plivo-family verbs Vobiz inherits (not in our fact sheet; see docs/transfers.md).
    response = VoiceResponse()
    response.add_child("Speak", message)
    response.add_child("Hangup")
    return str(response.to_xml())


def vobiz_dial(target_e164: str, caller_id: str | None) -> str:
    response = VoiceResponse()
    dial = response.add_child("Dial", caller_id=caller_id.lstrip("+") if caller_id else None)
    dial.add_child("Number", target_e164.lstrip("+"))
    return str(response.to_xml())


def vobiz_conference(room: str, *, speak: str | None = None, start_on_enter: bool) -> str:
    """A warm transfer's room (reference R3, Vobiz's own warm-transfer example): `stayAlone="true"` or a member
    alone in the room (the caller, while the human's phone rings) is put straight back out; `endConferenceOnExit`
    on both sides, so whoever hangs up ends the bridge; no DTMF relay. `startConferenceOnEnter="false"` keeps the
    caller waiting (Vobiz's wait sound) until the human enters."""
    response = VoiceResponse()
    if speak:
        response.add_child("Speak", speak)
    response.add_child("Conference", room, stay_alone=True, start_conference_on_enter=start_on_enter,
                       end_conference_on_exit=True, relay_d_t_m_f=False)
    return str(response.to_xml())


# -- signatures -----------------------------------------------------------------------------------------------

def _base_url(url: str) -> str:
    return url.split("?", 1)[0]


def vobiz_signature_v3(auth_token: str, url: str, nonce: str) -> str:
    msg = f"{_base_url(url)}.{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), msg, hashlib.sha256).digest()).decode()


def vobiz_signature_v2(auth_token: str, url: str, nonce: str) -> str:
    msg = f"{_base_url(url)}{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), msg, hashlib.sha256).digest()).decode()


def check_vobiz_signature(
    auth_token: str, public_url: str, headers: Mapping[str, str], nonces: NonceCache | None
) -> SignatureResult:
    """V3 first, then V2. The body is not signed by Vobiz, so form fields stay unauthenticated claims."""
    for version, compute in (("V3", vobiz_signature_v3), ("V2", vobiz_signature_v2)):
        sig = headers.get(f"x-vobiz-signature-{version.lower()}")
        nonce = headers.get(f"x-vobiz-signature-{version.lower()}-nonce")
        if not sig or not nonce:
            continue
        if not auth_token:
            return SignatureResult.INVALID
        expected = compute(auth_token, public_url, nonce)
        # A header may carry several comma-separated signatures (e.g. during token rotation).
        if not any(hmac.compare_digest(expected, s.strip()) for s in sig.split(",")):
            return SignatureResult.INVALID
        if nonces is not None and not nonces.check_and_add(nonce):
            return SignatureResult.REPLAYED
        return SignatureResult.VALID
    return SignatureResult.MISSING


# -- hang-up causes -------------------------------------------------------------------------------------------

def hangup_outcome(form: Mapping[str, str]) -> CallOutcome | None:
    """The Hangup callback (hangup_url), reference A3; cause codes from the hangup-causes table. None while the
    call is not over. CALL_REJECTED is the callee declining: REJECTED (which the dialer retries like busy)."""
    call_status = form.get("CallStatus", "").lower()
    if form.get("Event", "") != "Hangup" and call_status not in FINAL_STATUSES:
        return None
    try:
        code = int(form.get("HangupCauseCode") or 0)
    except ValueError:
        code = 0
    cause = form.get("HangupCause", "").upper()
    if code == 9100 or cause == "MACHINE_DETECTED":
        return CallOutcome.MACHINE
    if cause == "CALL_REJECTED":
        return CallOutcome.REJECTED
    if call_status == "busy" or code in (3010, 3020) or cause == "USER_BUSY":
        return CallOutcome.BUSY
    if call_status in ("no-answer", "timeout") or code in (3000, 6010) or cause in (
            "NO_ANSWER", "RING_TIMEOUT", "NO_USER_RESPONSE"):
        return CallOutcome.NO_ANSWER
    if call_status in ("cancel", "canceled") or code == 1000 or cause == "ORIGINATOR_CANCEL":
        return CallOutcome.CANCELED
    if call_status == "failed" or code in (1010, 7011, 8011) or cause in ("UNALLOCATED_NUMBER", "NETWORK_ERROR"):
        return CallOutcome.FAILED
    answered = bool(form.get("AnswerTime")) or (float_or_none(form.get("Duration")) or 0) > 0
    if call_status == "completed" and not answered and cause not in ("", "NORMAL_CLEARING"):
        return CallOutcome.NO_ANSWER
    return CallOutcome.COMPLETED


# -- the carrier ----------------------------------------------------------------------------------------------

class Vobiz(Carrier):
    name: ClassVar[Literal["vobiz"]] = "vobiz"
    answer_path = "answer"
    status_path = "hangup"
    call_id_field = "CallUUID"
    signs_every_webhook = False
    supports_warm_transfer = True

    def check_signature(self, auth_token: str, public_url: str, method: str, form: Mapping[str, str],
                        headers: Mapping[str, str], nonces: NonceCache | None) -> SignatureResult:
        return check_vobiz_signature(auth_token, public_url, headers, nonces)

    def parse_answer(self, form: Mapping[str, str], default_region: str) -> AnswerWebhook | None:
        call_uuid = form.get("CallUUID", "")
        if not call_uuid:
            return None
        return AnswerWebhook(call_uuid, to_e164(form.get("From"), default_region),
                             to_e164(form.get("To"), default_region),
                             ended=form.get("Event", "StartApp") == "Hangup")  # hangup_url defaults to answer_url

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate | None:
        call_uuid = form.get("CallUUID", "")
        if not call_uuid:
            return None
        cause = form.get("HangupCause", "")
        summary = f"Vobiz hangup {cause}".strip()
        return StatusUpdate(call_uuid, hangup_outcome(form), summary,
                            f"Vobiz hangup {cause} ({form.get('HangupSource', '')})".strip(),
                            call_status=form.get("CallStatus", ""), cause=cause,
                            duration_s=float_or_none(form.get("Duration")))

    def parse_machine_detection(self, form: Mapping[str, str]) -> MachineDetection:
        machine = form.get("Machine", "").lower() == "true"
        return MachineDetection("machine_start" if machine else "human", form.get("CallUUID", ""))

    def media_format(self, requested: str | None, default_content_type: str) -> MediaFormat:
        content_type = FORMATS[requested][0] if requested in FORMATS else default_content_type
        return MediaFormat(content_type, 16000 if "16000" in content_type else 8000)

    def stream_document(self, ws_base_url: str, token: str, media: MediaFormat, status_callback: str | None) -> str:
        return vobiz_stream(f"{ws_base_url}/ws/vobiz/{token}", media.content_type, status_callback)

    def say_hangup_document(self, message: str) -> str:
        return vobiz_speak_hangup(message)

    def busy_document(self) -> str:
        return vobiz_hangup_busy()

    def dial_document(self, target_e164: str, caller_id: str | None) -> str:
        return vobiz_dial(target_e164, caller_id)

    def hold_document(self, room: str) -> str:
        return vobiz_conference(room, start_on_enter=False)

    def join_room_document(self, room: str, whisper: str | None) -> str:
        return vobiz_conference(room, speak=whisper, start_on_enter=True)

    def rest_client(self, credentials: CarrierCredentials, http: httpx.AsyncClient, timeout_s: float
                    ) -> CarrierClient:
        return VobizRestClient(credentials, http)


# -- REST -----------------------------------------------------------------------------------------------------

def api_root(api_base_url: str | None) -> str:
    """`api_base_url` overrides the host (tests: the fake carrier); the /api/v1 prefix is added when missing."""
    base = (api_base_url or VOBIZ_API_BASE).rstrip("/")
    return base if base.endswith(VOBIZ_API_PREFIX) else base + VOBIZ_API_PREFIX


class VobizRestClient:
    carrier: Literal["twilio", "vobiz"] = "vobiz"

    def __init__(self, credentials: CarrierCredentials, http: httpx.AsyncClient) -> None:
        self.auth_id = credentials.account_id
        self._base = api_root(credentials.api_base_url)
        self._headers = {"X-Auth-ID": credentials.account_id, "X-Auth-Token": credentials.auth_token}
        self._http = http

    async def close(self) -> None:
        return None  # the shared httpx client belongs to the registry

    def _url(self, *parts: str) -> str:
        return f"{self._base}/Account/{self.auth_id}/" + "".join(f"{p}/" for p in parts)

    async def _request(self, operation: str, method: str, url: str, json: dict[str, Any] | None = None
                       ) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=json, headers=self._headers)
        except httpx.HTTPError as exc:
            raise CarrierError("vobiz", operation, 0, f"{type(exc).__name__}: {exc}") from exc

    async def hangup(self, carrier_call_id: str) -> bool:
        resp = await self._request("hangup", "DELETE", self._url("Call", carrier_call_id))
        if resp.status_code == 404:
            return False  # already ended
        if not resp.is_success:
            raise CarrierError("vobiz", "hangup", resp.status_code, resp.text)
        return True

    async def transfer(self, carrier_call_id: str, aleg_url: str) -> bool:
        """Interrupts the running XML (and the <Stream>) and runs the XML at aleg_url instead."""
        body = {"legs": "aleg", "aleg_url": aleg_url, "aleg_method": "POST"}
        resp = await self._request("transfer", "POST", self._url("Call", carrier_call_id), json=body)
        if resp.status_code == 404:
            return False
        if not resp.is_success:
            raise CarrierError("vobiz", "transfer", resp.status_code, resp.text)
        return True

    async def redirect(self, carrier_call_id: str, document: str, document_url: str | None) -> bool:
        """Vobiz fetches the new XML itself: `document_url` must serve `document`."""
        if not document_url:
            raise CarrierError("vobiz", "transfer", 0, "a Vobiz transfer needs an XML URL")
        return await self.transfer(carrier_call_id, document_url)

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        if not instructions_url:
            raise CarrierError("vobiz", "transfer", 0, "a Vobiz transfer needs an XML URL with the <Dial>")
        if not await self.transfer(carrier_call_id, instructions_url):
            raise CarrierError("vobiz", "transfer", 404, "call already ended")

    async def send_digits(self, carrier_call_id: str, digits: str) -> bool:
        """`POST /Account/{auth_id}/Call/{uuid}/DTMF/` (the Vobiz SDK's dtmf client, reference R5)."""
        body = {"digits": check_digits(digits), "leg": "aleg"}
        resp = await self._request("send_digits", "POST", self._url("Call", carrier_call_id, "DTMF"), json=body)
        if not resp.is_success:
            raise CarrierError("vobiz", "send_digits", resp.status_code, resp.text)
        return True

    async def warm_transfer(self, carrier_call_id: str, transfer: WarmTransfer) -> None:
        """Hold: the Transfer API moves the caller into the room (`hold_url` serves the <Conference>). Brief and
        bridge: a new call to the human whose answer document (`human_url`) speaks the brief, then enters the
        room; its hangup_url (the warm-status route) tells us when the human did not answer."""
        if not transfer.hold_url or not transfer.human_url:
            raise CarrierError("vobiz", "warm_transfer", 0, "a Vobiz warm transfer needs the two XML URLs")
        if not await self.transfer(carrier_call_id, transfer.hold_url):
            raise CarrierError("vobiz", "warm_transfer", 404, "call already ended")
        await self.create_call(OutboundCallRequest(
            to_number=transfer.human_number, from_number=transfer.from_number, answer_url=transfer.human_url,
            status_callback_url=transfer.status_callback_url, ring_timeout_s=transfer.ring_timeout_s))

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        body: dict[str, Any] = {
            "from": request.from_number.lstrip("+"),
            "to": request.to_number.lstrip("+"),
            "answer_url": request.answer_url,
            "answer_method": "POST",
            "ring_timeout": request.ring_timeout_s,
        }
        if request.status_callback_url:
            body["hangup_url"] = request.status_callback_url
            body["hangup_method"] = "POST"
        if request.time_limit_s:
            body["time_limit"] = request.time_limit_s
        if request.machine_detection != "off":
            body["machine_detection"] = "true"
            if request.machine_detection_url:
                body["machine_detection_url"] = request.machine_detection_url
                body["machine_detection_method"] = "POST"
        resp = await self._request("create_call", "POST", self._url("Call"), json=body)
        if not resp.is_success:  # the docs say 200, others saw 201: any 2xx is success
            raise CarrierError("vobiz", "create_call", resp.status_code, resp.text)
        try:
            data = resp.json()
        except ValueError as exc:
            raise CarrierError("vobiz", "create_call", resp.status_code, "response is not JSON") from exc
        call_id = data.get("request_uuid") or data.get("call_uuid")
        if not call_id:
            raise CarrierError("vobiz", "create_call", resp.status_code, f"no request_uuid in {data}")
        return OutboundCallResult(carrier_call_id=str(call_id), status="queued")
