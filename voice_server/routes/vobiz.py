"""Vobiz webhooks (reference A1, A3, A4): answer URL (Event=StartApp), hang-up, stream status, transfer XML."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response

from core.call_events import CarrierCredentials
from voice_server import answers
from voice_server.admission import AT_CAPACITY_DETAIL, admits, vobiz_busy
from voice_server.call_token import CallTokenError, verify_transfer_token
from voice_server.calls import (
    IncomingCall,
    inbound_call_id,
    prepare_call,
    public_url,
    record_rejected_call,
    record_unanswered,
    resolve,
)
from voice_server.numbers import to_e164
from voice_server.routes.deps import form_or_query, voice_app
from voice_server.signatures import VobizSignatureResult, check_vobiz_signature
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)
router = APIRouter(prefix="/vobiz", tags=["vobiz"])

AppDep = Annotated[VoiceApp, Depends(voice_app)]
FormDep = Annotated[dict[str, str], Depends(form_or_query)]

# Inbound stream formats Vobiz offers; `?format=` on the answer URL picks one per Vobiz application.
FORMATS: dict[str, tuple[str, int]] = {
    "mulaw_8k": ("audio/x-mulaw;rate=8000", 8000),
    "l16_8k": ("audio/x-l16;rate=8000", 8000),
    "l16_16k": ("audio/x-l16;rate=16000", 16000),
}

_HANGUP_CAUSES: dict[str, Literal["busy", "no_answer", "failed", "canceled", "caller_hangup", "rejected"]] = {
    "USER_BUSY": "busy", "NO_ANSWER": "no_answer", "NO_USER_RESPONSE": "no_answer", "ORIGINATOR_CANCEL": "canceled",
    "CALL_REJECTED": "rejected", "NORMAL_CLEARING": "caller_hangup",
}


def _signature_ok(app: VoiceApp, request: Request, creds: CarrierCredentials | None) -> bool:
    """V3 (then V2); a missing signature is refused unless VOBIZ_REQUIRE_SIGNATURE=false (local development)."""
    if creds is None or creds.carrier != "vobiz":
        return False  # fail closed: an unknown number, no credentials, or a number of the other carrier
    result = check_vobiz_signature(creds.auth_token, public_url(app, request), request.headers, app.nonces)
    if result is VobizSignatureResult.VALID:
        return True
    if result is VobizSignatureResult.MISSING:
        return not app.settings.vobiz_require_signature
    log.warning("Vobiz webhook %s rejected: signature %s", request.url.path, result.value)
    return False


def _forbidden() -> Response:
    return Response("invalid Vobiz signature", status_code=403, media_type="text/plain")


@router.api_route("/answer", methods=["POST", "GET"])
async def answer(request: Request, app: AppDep, form: FormDep, call_id: str | None = None,
                 format: str | None = None) -> Response:
    if form.get("Event", "StartApp") == "Hangup":  # hangup_url defaults to answer_url
        return await hangup(request, app, form, call_id)
    call_uuid = form.get("CallUUID", "")
    if not call_uuid:
        return Response("CallUUID is required", status_code=400, media_type="text/plain")
    region = app.settings.vobiz_default_region
    incoming = IncomingCall("vobiz", call_uuid, to_e164(form.get("From"), region), to_e164(form.get("To"), region),
                            outbound_call_id=call_id)
    res = await resolve(app, incoming)
    if res.status == "unavailable":  # the backend cannot be asked: a sorry grants nothing, so no signature needed
        record_rejected_call(app, incoming, res, "error", "agent lookup unavailable")
        return answers.xml_response(answers.vobiz_speak_hangup(answers.UNAVAILABLE_MESSAGE))
    # An unknown number has no credentials to check against: refused like a bad signature (fail closed).
    if not _signature_ok(app, request, res.credentials):
        return _forbidden()
    if not app.accepting:
        record_rejected_call(app, incoming, res, "error", "draining")
        return answers.xml_response(answers.vobiz_speak_hangup(answers.UNAVAILABLE_MESSAGE))
    if not admits(app, res.call_id):
        record_rejected_call(app, incoming, res, "busy", AT_CAPACITY_DETAIL)
        return answers.xml_response(vobiz_busy())
    content_type: str = app.settings.vobiz_content_type
    if format in FORMATS:
        content_type = FORMATS[format][0]
    rate = 16000 if "16000" in content_type else 8000
    token = prepare_call(app, incoming, res, out_sample_rate=rate)
    base = app.settings.voice_public_base_url
    return answers.xml_response(answers.vobiz_stream(f"{app.settings.public_ws_base_url}/ws/vobiz/{token}",
                                                     content_type, status_callback=f"{base}/vobiz/stream-status"))


@router.api_route("/hangup", methods=["POST", "GET"])
async def hangup(request: Request, app: AppDep, form: FormDep, call_id: str | None = None) -> Response:
    """Event=Hangup: the authoritative end of a Vobiz call, however it ended."""
    call_uuid = form.get("CallUUID", "")
    if not call_uuid:
        return Response("CallUUID is required", status_code=400, media_type="text/plain")
    our_id = call_id or inbound_call_id("vobiz", call_uuid)
    region = app.settings.vobiz_default_region
    creds = await app.credentials_for(our_id, call_uuid, "vobiz", to_e164(form.get("To"), region),
                                      to_e164(form.get("From"), region))
    if not _signature_ok(app, request, creds):
        return _forbidden()
    cause = form.get("HangupCause", "")
    session = app.sessions.get(our_id)
    if session is not None:
        session.carrier_ended(f"Vobiz hangup {cause}".strip())
    elif our_id not in app.ended_calls:
        record_unanswered(app, our_id, _HANGUP_CAUSES.get(cause, "failed" if cause else "caller_hangup"),
                          f"Vobiz hangup {cause} ({form.get('HangupSource', '')})".strip())
    return Response(status_code=204)


@router.api_route("/stream-status", methods=["POST", "GET"])
async def stream_status(form: FormDep) -> Response:
    log.info("vobiz stream %s: %s %s", form.get("StreamID", "?"), form.get("Event", "?"), form.get("Error", ""))
    return Response(status_code=204)


@router.api_route("/transfer/{token}", methods=["POST", "GET"])
async def transfer_xml(token: str, app: AppDep) -> Response:
    """The XML Vobiz runs after a transfer request: dial the target named in the signed token."""
    try:
        claims = verify_transfer_token(app.settings.call_token_secret.get_secret_value(), token)
    except CallTokenError:
        return Response("invalid transfer token", status_code=403, media_type="text/plain")
    return answers.xml_response(answers.vobiz_dial(claims.target, claims.caller_id or None))
