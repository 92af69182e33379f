"""Twilio webhooks (reference B4, B6, B7): voice answer, call status, stream status, warm-transfer status."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from core.call_events import CarrierCredentials
from voice_server import answers
from voice_server.admission import AT_CAPACITY_DETAIL, admits, twiml_busy
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
from voice_server.signatures import twilio_signature_valid
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])

AppDep = Annotated[VoiceApp, Depends(voice_app)]
FormDep = Annotated[dict[str, str], Depends(form_or_query)]

_TERMINAL = {"completed": "caller_hangup", "busy": "busy", "no-answer": "no_answer", "failed": "failed",
             "canceled": "canceled"}


def _signed(app: VoiceApp, request: Request, form: dict[str, str], creds: CarrierCredentials | None) -> bool:
    if creds is None or creds.carrier != "twilio":
        return False  # fail closed: an unknown number, no credentials, or a number of the other carrier
    params = {} if request.method == "GET" else form
    return twilio_signature_valid(creds.auth_token, public_url(app, request), params,
                                  request.headers.get("x-twilio-signature"))


def _forbidden() -> Response:
    return Response("invalid X-Twilio-Signature", status_code=403, media_type="text/plain")


@router.api_route("/voice", methods=["POST", "GET"])
async def voice(request: Request, app: AppDep, form: FormDep, call_id: str | None = None) -> Response:
    call_sid = form.get("CallSid", "")
    if not call_sid:
        return Response("CallSid is required", status_code=400, media_type="text/plain")
    incoming = IncomingCall("twilio", call_sid, to_e164(form.get("From")), to_e164(form.get("To")),
                            outbound_call_id=call_id)
    res = await resolve(app, incoming)
    if res.status == "unavailable":  # the backend cannot be asked: a sorry grants nothing, so no signature needed
        record_rejected_call(app, incoming, res, "error", "agent lookup unavailable")
        return answers.xml_response(answers.twiml_say_hangup(answers.UNAVAILABLE_MESSAGE))
    # An unknown number has no credentials to check against: refused like a bad signature (fail closed).
    if not _signed(app, request, form, res.credentials):
        return _forbidden()
    if not app.accepting:
        record_rejected_call(app, incoming, res, "error", "draining")
        return answers.xml_response(answers.twiml_say_hangup(answers.UNAVAILABLE_MESSAGE))
    if not admits(app, res.call_id):
        record_rejected_call(app, incoming, res, "busy", AT_CAPACITY_DETAIL)
        return answers.xml_response(twiml_busy())
    token = prepare_call(app, incoming, res, out_sample_rate=8000)
    base = app.settings.voice_public_base_url
    return answers.xml_response(answers.twiml_stream(f"{app.settings.public_ws_base_url}/ws/twilio", token,
                                                     status_callback=f"{base}/twilio/stream-status"))


@router.post("/status")
async def status(request: Request, app: AppDep, form: FormDep, call_id: str | None = None) -> Response:
    """Call status callbacks (StatusCallback): ends a live session, or records calls that never connected."""
    call_sid = form.get("CallSid", "")
    call_status = form.get("CallStatus", "")
    if not call_sid:
        return Response("CallSid is required", status_code=400, media_type="text/plain")
    our_id = call_id or inbound_call_id("twilio", call_sid)
    creds = await app.credentials_for(our_id, call_sid, "twilio", to_e164(form.get("To")), to_e164(form.get("From")))
    if not _signed(app, request, form, creds):
        return _forbidden()
    reason = _TERMINAL.get(call_status)
    if reason is not None:
        session = app.sessions.get(our_id)
        if session is not None:
            session.carrier_ended(f"Twilio status {call_status}")
        elif our_id not in app.ended_calls:
            record_unanswered(app, our_id, reason, f"Twilio status {call_status}")  # type: ignore[arg-type]
    return Response(status_code=204)


@router.post("/stream-status")
async def stream_status(form: FormDep) -> Response:
    log.info("twilio stream %s: %s %s", form.get("StreamSid", "?"), form.get("StreamEvent", "?"),
             form.get("StreamError", ""))
    return Response(status_code=204)


@router.post("/warm-status/{call_id}")
async def warm_status(call_id: str, request: Request, app: AppDep, form: FormDep) -> Response:
    """Status of the human's leg in a warm transfer: if nobody answers, the waiting caller is told and released."""
    pending = app.warm_transfers.get(call_id)
    if pending is None:
        return Response(status_code=204)
    creds, caller_sid = pending
    if not _signed(app, request, form, creds):
        return _forbidden()
    call_status = form.get("CallStatus", "")
    if call_status in ("busy", "no-answer", "failed", "canceled"):
        app.warm_transfers.pop(call_id, None)
        client = app.carriers.for_credentials(creds)
        try:
            await client.redirect(caller_sid, answers.twiml_say_hangup(  # type: ignore[union-attr]
                "Sorry, nobody is available to take your call right now. Please call again later. Goodbye."))
        except Exception as exc:
            log.error("warm transfer fallback for %s failed: %s", call_id, exc)
    elif call_status == "completed":
        app.warm_transfers.pop(call_id, None)
    return Response(status_code=204)
