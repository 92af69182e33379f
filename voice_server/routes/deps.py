"""Route dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import Header, HTTPException, Request, WebSocket, WebSocketDisconnect

from core.listen_ticket import TicketPurpose, ticket_allows
from core.service_auth import ServiceTokenError, verify_service_token
from voice_server.call_registry import LiveCall
from voice_server.state import VoiceApp

TICKET_WAIT_S = 5.0


def voice_app(request: Request) -> VoiceApp:
    app: VoiceApp = request.app.state.voice
    return app


def voice_app_ws(websocket: WebSocket) -> VoiceApp:
    app: VoiceApp = websocket.app.state.voice
    return app


async def admit_supervisor(websocket: WebSocket, app: VoiceApp, call_id: str, purpose: TicketPurpose
                           ) -> LiveCall | None:
    """Listen-in and take-over sockets: accepts, reads the ticket (the first message, never part of the URL) and
    finds the call here; otherwise closes with 4401 (bad ticket) or 4404 (not live here) and returns None."""
    await websocket.accept()
    try:
        ticket = await asyncio.wait_for(websocket.receive_text(), TICKET_WAIT_S)
    except (TimeoutError, WebSocketDisconnect, KeyError):
        ticket = ""
    if not ticket_allows(app.settings.service_token_secret.get_secret_value(), ticket.strip(), call_id, purpose):
        await websocket.close(code=4401, reason=f"invalid {purpose} ticket")
        return None
    live = app.calls.find_live(call_id)
    if live is None:
        await websocket.close(code=4404, reason="call not live on this voice server")
    return live


# Carrier webhooks are a few hundred bytes of form fields; anything near this is hostile (and would be held in memory).
MAX_WEBHOOK_BODY_BYTES = 64 * 1024


async def _bounded_body(request: Request) -> None:
    """Reads the body with a cap (Content-Length or not) so request.form() parses only what was allowed in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"webhook body over {MAX_WEBHOOK_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BODY_BYTES:
            raise HTTPException(status_code=413, detail=f"webhook body over {MAX_WEBHOOK_BODY_BYTES} bytes")
    request._body = bytes(body)  # starlette's form parser reads the cached body


async def form_or_query(request: Request) -> dict[str, str]:
    """Carriers POST form bodies (or GET with a query string); both end up as one flat dict."""
    if request.method == "GET":
        return {k: v for k, v in request.query_params.items()}
    await _bounded_body(request)
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def require_service_token(request: Request, authorization: str = Header(default="")) -> str:
    app: VoiceApp = request.app.state.voice
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401, detail="service token required")
    try:
        return verify_service_token(app.settings.service_token_secret.get_secret_value(), token)
    except ServiceTokenError as exc:
        raise HTTPException(status_code=401, detail="invalid service token") from exc


def dropping_queue(maxsize: int) -> tuple[asyncio.Queue[bytes], Callable[[bytes], None]]:
    """Audio for a supervisor's socket, fed from the call's loop: one that falls behind loses the oldest audio
    rather than holding the call's memory."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=maxsize)

    def put(data: bytes) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(data)

    return queue, put
