"""Carrier webhooks, the same six for every carrier in telephony/registry.py (reference A1-A4, B4-B7):

- /{carrier}/{answer_path}: answer a call (stream it to us, or say sorry and hang up);
- /{carrier}/{status_path}: the call's status callback (ends a live session, or records a call that never connected);
- /{carrier}/stream-status: the media stream's own status (logged);
- /{carrier}/transfer/{token}: the document a carrier fetches during a transfer (signed: a blind transfer's dial,
  a warm transfer's hold, the human's brief and room, or the apology when the human does not answer);
- /{carrier}/warm-status/{call_id}: the human's leg in a warm transfer;
- /{carrier}/amd: the carrier's answering-machine verdict for an outbound call, fed to its in-call detector.

What differs per carrier (field names, signatures, markup, status codes) is behind `telephony.base.Carrier`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from core.call_events import CarrierCredentials, EndReason
from telephony.base import CallOutcome, Carrier, SignatureResult, warm_room
from telephony.call_token import CallTokenError, TransferClaims, transfer_url, verify_transfer_token
from telephony.registry import CARRIERS
from voice_server.admission import AT_CAPACITY_DETAIL, admits
from voice_server.answering import (
    IncomingCall,
    inbound_call_id,
    prepare_call,
    public_url,
    record_rejected_call,
    record_unanswered,
    resolve,
)
from voice_server.routes.deps import form_or_query, voice_app
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)
router = APIRouter()

AppDep = Annotated[VoiceApp, Depends(voice_app)]
FormDep = Annotated[dict[str, str], Depends(form_or_query)]
Handler = Callable[..., Awaitable[Response]]

XML_MEDIA_TYPE = "application/xml"
UNAVAILABLE_MESSAGE = "Sorry, we cannot take your call right now. Please try again later. Goodbye."
NOBODY_AVAILABLE_MESSAGE = "Sorry, nobody is available to take your call right now. Please call again later. Goodbye."

# How a call that never reached a media session here ended, in the call log's words.
UNANSWERED_REASONS: dict[CallOutcome, EndReason] = {
    CallOutcome.COMPLETED: "caller_hangup", CallOutcome.BUSY: "busy", CallOutcome.NO_ANSWER: "no_answer",
    CallOutcome.FAILED: "failed", CallOutcome.CANCELED: "canceled", CallOutcome.REJECTED: "rejected",
    CallOutcome.MACHINE: "voicemail",
}
HUMAN_LEG_MISSED = {CallOutcome.BUSY, CallOutcome.NO_ANSWER, CallOutcome.FAILED, CallOutcome.CANCELED,
                    CallOutcome.REJECTED}


def xml_response(body: str) -> Response:
    return Response(content=body, media_type=XML_MEDIA_TYPE)


def _text(status_code: int, message: str) -> Response:
    return Response(message, status_code=status_code, media_type="text/plain")


def _authentic(app: VoiceApp, carrier: Carrier, request: Request, form: dict[str, str],
               creds: CarrierCredentials | None) -> bool:
    result = carrier.webhook_authentic(creds, public_url(app, request), request.method, form, request.headers,
                                       app.nonces, require_signature=app.settings.vobiz_require_signature)
    if result is not SignatureResult.VALID:
        log.warning("%s webhook %s rejected: signature %s", carrier.name, request.url.path, result.value)
    return result is SignatureResult.VALID


def _forbidden(carrier: Carrier) -> Response:
    return _text(403, f"invalid {carrier.name} signature")


async def answer_call(carrier: Carrier, request: Request, app: VoiceApp, form: dict[str, str],
                      call_id: str | None, format: str | None) -> Response:
    webhook = carrier.parse_answer(form, app.settings.vobiz_default_region)
    if webhook is None:
        return _text(400, f"{carrier.call_id_field} is required")
    if webhook.ended:
        return await status(carrier, request, app, form, call_id)
    incoming = IncomingCall(carrier.name, webhook.carrier_call_id, webhook.from_number, webhook.to_number,
                            outbound_call_id=call_id)
    res = await resolve(app, incoming)
    if res.status == "unavailable":  # the backend cannot be asked: a sorry grants nothing, so no signature needed
        record_rejected_call(app, incoming, res, "error", "agent lookup unavailable")
        return xml_response(carrier.say_hangup_document(UNAVAILABLE_MESSAGE))
    # An unknown number has no credentials to check against: refused like a bad signature (fail closed).
    if not _authentic(app, carrier, request, form, res.credentials):
        return _forbidden(carrier)
    if not app.accepting:
        record_rejected_call(app, incoming, res, "error", "draining")
        return xml_response(carrier.say_hangup_document(UNAVAILABLE_MESSAGE))
    if res.agent is not None and res.agent.over_budget_message and res.direction == "inbound":
        record_rejected_call(app, incoming, res, "error", "the organisation's monthly budget is reached")
        return xml_response(carrier.say_hangup_document(res.agent.over_budget_message))
    if not admits(app, res.call_id):
        record_rejected_call(app, incoming, res, "busy", AT_CAPACITY_DETAIL)
        return xml_response(carrier.busy_document())
    media = carrier.media_format(format, app.settings.vobiz_content_type)
    token = prepare_call(app, incoming, res, out_sample_rate=media.sample_rate)
    stream_status_url = carrier.path(app.settings.voice_public_base_url, "stream-status")
    return xml_response(carrier.stream_document(app.settings.public_ws_base_url, token, media, stream_status_url))


async def status(carrier: Carrier, request: Request, app: VoiceApp, form: dict[str, str],
                 call_id: str | None) -> Response:
    """Ends a live session, or records a call that never connected here (busy, no answer...)."""
    update = carrier.parse_status(form)
    if update is None:
        return _text(400, f"{carrier.call_id_field} is required")
    our_id = call_id or inbound_call_id(carrier.name, update.carrier_call_id)
    numbers = carrier.parse_answer(form, app.settings.vobiz_default_region)  # the same fields name the numbers
    creds = await app.calls.credentials_for(our_id, carrier.name, numbers.to_number if numbers else "",
                                            numbers.from_number if numbers else "")
    if not _authentic(app, carrier, request, form, creds):
        return _forbidden(carrier)
    if update.outcome is not None:
        session = app.calls.live(our_id)
        if session is not None:
            session.carrier_ended(update.summary)
        elif not app.calls.has_ended(our_id):
            record_unanswered(app, our_id, UNANSWERED_REASONS[update.outcome], update.detail)
    return Response(status_code=204)


async def machine_detection(carrier: Carrier, request: Request, app: VoiceApp, form: dict[str, str],
                            call_id: str | None) -> Response:
    """Twilio AsyncAmdStatusCallback / Vobiz machine_detection_url: the verdict goes to the live call's in-call
    voicemail detector (pipelines/voicemail.py), which acts on it if nothing has decided yet."""
    if not call_id:
        return _text(400, "call_id is required")
    detection = carrier.parse_machine_detection(form)
    numbers = carrier.parse_answer(form, app.settings.vobiz_default_region)
    creds = await app.calls.credentials_for(call_id, carrier.name, numbers.to_number if numbers else "",
                                            numbers.from_number if numbers else "")
    if not _authentic(app, carrier, request, form, creds):
        return _forbidden(carrier)
    session = app.calls.live(call_id)
    detector = session.call.voicemail if session is not None and session.call is not None else None
    if detector is not None:
        await detector.carrier_verdict(detection)
    return Response(status_code=204)


async def stream_status(carrier: Carrier, form: dict[str, str]) -> Response:
    log.info("%s stream status: %s", carrier.name, {k: v[:100] for k, v in list(form.items())[:12]})
    return Response(status_code=204)


async def transfer_document(carrier: Carrier, token: str, app: VoiceApp) -> Response:
    """The document a carrier fetches during a transfer: what the signed token names, for that call only."""
    try:
        claims = verify_transfer_token(app.settings.call_token_secret.get_secret_value(), token)
    except CallTokenError:
        return _text(403, "invalid transfer token")
    if claims.step == "hold":
        return xml_response(carrier.hold_document(warm_room(claims.call_id)))
    if claims.step == "human":
        return xml_response(carrier.join_room_document(warm_room(claims.call_id), claims.say or None))
    if claims.step == "apology":
        return xml_response(carrier.say_hangup_document(NOBODY_AVAILABLE_MESSAGE))
    return xml_response(carrier.dial_document(claims.target, claims.caller_id or None))


async def warm_status(carrier: Carrier, call_id: str, request: Request, app: VoiceApp,
                      form: dict[str, str]) -> Response:
    """Status of the human's leg in a warm transfer: if nobody answers, the waiting caller is told and released."""
    pending = app.calls.warm_transfers.get(call_id)
    if pending is None:
        return Response(status_code=204)
    creds, caller_call_id = pending
    if not _authentic(app, carrier, request, form, creds):
        return _forbidden(carrier)
    update = carrier.parse_status(form)
    outcome = update.outcome if update is not None else None
    if outcome in HUMAN_LEG_MISSED:
        app.calls.warm_transfers.pop(call_id, None)
        client = app.carriers.for_credentials(creds)
        apology = transfer_url(app.settings.call_token_secret.get_secret_value(),
                               app.settings.voice_public_base_url, carrier,
                               TransferClaims(call_id=call_id, target="", step="apology"))
        try:  # inline for Twilio, fetched from `apology` by Vobiz
            await client.redirect(caller_call_id, carrier.say_hangup_document(NOBODY_AVAILABLE_MESSAGE), apology)
        except Exception as exc:
            log.error("warm transfer fallback for %s failed: %s", call_id, exc)
    elif outcome is CallOutcome.COMPLETED:
        app.calls.warm_transfers.pop(call_id, None)
    return Response(status_code=204)


def _routes(carrier: Carrier) -> APIRouter:
    """Binds the handlers above to one carrier's paths."""
    routes = APIRouter(prefix=f"/{carrier.name}", tags=[carrier.name])
    both = ["POST", "GET"]

    async def answer_route(request: Request, app: AppDep, form: FormDep, call_id: str | None = None,
                           format: str | None = None) -> Response:
        return await answer_call(carrier, request, app, form, call_id, format)

    async def status_route(request: Request, app: AppDep, form: FormDep, call_id: str | None = None) -> Response:
        return await status(carrier, request, app, form, call_id)

    async def amd_route(request: Request, app: AppDep, form: FormDep, call_id: str | None = None) -> Response:
        return await machine_detection(carrier, request, app, form, call_id)

    async def stream_status_route(form: FormDep) -> Response:
        return await stream_status(carrier, form)

    async def transfer_route(token: str, app: AppDep) -> Response:
        return await transfer_document(carrier, token, app)

    async def warm_status_route(call_id: str, request: Request, app: AppDep, form: FormDep) -> Response:
        return await warm_status(carrier, call_id, request, app, form)

    routes.add_api_route(f"/{carrier.answer_path}", answer_route, methods=both)
    routes.add_api_route(f"/{carrier.status_path}", status_route, methods=both)
    routes.add_api_route("/stream-status", stream_status_route, methods=both)
    routes.add_api_route("/amd", amd_route, methods=["POST"])
    routes.add_api_route("/transfer/{token}", transfer_route, methods=both)
    routes.add_api_route("/warm-status/{call_id}", warm_status_route, methods=["POST"])
    return routes


for _carrier in CARRIERS.values():
    router.include_router(_routes(_carrier))
