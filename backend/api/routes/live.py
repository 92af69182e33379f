"""/api/v1/live: calls in progress across the organisation and one call's live view, as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import StreamingResponse

from backend.api.deps import CallsRead, CallsSupervise, ServicesDep
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND
from backend.models.live import ListenTicket, LiveCall, WhisperIn

router = APIRouter(prefix="/live", tags=["live"], responses=AUTHENTICATED)
CallId = Annotated[str, Path(min_length=1, max_length=64)]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.get("/calls")
async def live_calls(principal: CallsRead, services: ServicesDep) -> list[LiveCall]:
    """Calls in progress now, oldest first."""
    return await services.live.in_progress(principal)


@router.get("/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}},
            "description": "`calls` (a list of LiveCall) on every change; a comment every 15 s."}})
async def live_stream(request: Request, principal: CallsRead, services: ServicesDep) -> StreamingResponse:
    return StreamingResponse(services.live.org_stream(principal, request.is_disconnected),
                             media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/calls/{call_id}/stream", response_class=StreamingResponse, responses={
    **NOT_FOUND, 200: {"content": {"text/event-stream": {}},
                       "description": "`turn` and `tool` as they are applied (those so far first), `interim` (the caller's "
                                      "words so far, never stored; the next caller `turn` replaces it), then "
                                      "`end`."}})
async def live_call_stream(call_id: CallId, request: Request, principal: CallsRead,
                           services: ServicesDep) -> StreamingResponse:
    stream = services.live.call_stream(principal, call_id, request.is_disconnected)
    first = await anext(stream, ": closed\n\n")  # a 404 comes before the stream starts, not in the middle of it
    return StreamingResponse(_prepend(first, stream), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/calls/{call_id}/whisper", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def whisper(call_id: CallId, body: WhisperIn, principal: CallsSupervise, services: ServicesDep) -> Response:
    """Owners and admins: an instruction added to the agent's context; the caller hears nothing. Audited. 409
    `voice_server_gone` when the replica holding the call has stopped."""
    await services.live_control.whisper(principal, call_id, body.text)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/calls/{call_id}/listen", responses={**NOT_FOUND, **CONFLICT})
async def listen(call_id: CallId, principal: CallsSupervise, services: ServicesDep) -> ListenTicket:
    """Owners and admins: where to listen in (a WebSocket on the voice server holding the call; send `ticket` as
    the first message) to the caller and agent mixed; the caller hears nothing. Audited."""
    return await services.live_control.listen_ticket(principal, call_id)


@router.post("/calls/{call_id}/takeover", responses={**NOT_FOUND, **CONFLICT})
async def take_over(call_id: CallId, principal: CallsSupervise, services: ServicesDep) -> ListenTicket:
    """Owners and admins: take the call over from the agent (a WebSocket on the voice server holding the call;
    send `ticket` as the first message, then microphone audio; the caller's audio comes back). The agent stays
    silent until the socket hands the call back. Audited as `call.taken_over`. 409 for an ended call."""
    return await services.live_control.takeover_ticket(principal, call_id)


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item
