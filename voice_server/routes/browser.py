"""The browser test-call socket, /v1/browser?token=… (protocol: frontend/README.md "Browser test call protocol").

The token comes from the backend's POST /api/v1/test-calls. It is checked (signature, audience, expiry) and then
claimed from the backend, which accepts each token once: a missing, invalid, expired or reused token is refused
at the handshake (HTTP 403) before any audio. The call then runs the same pipeline as a phone call
(voice_server/session.py), recorded and reported to the backend the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from core.call_events import CallStarted
from telephony.call_token import CallClaims, CallTokenError, verify_browser_token
from voice_server.admission import admits
from voice_server.backend_client import BackendRejected, BackendUnavailable
from voice_server.media.browser import parse_browser_start
from voice_server.media.serializers import StartError
from voice_server.routes.deps import voice_app_ws
from voice_server.session import CallSession
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)
router = APIRouter(tags=["media"])

AppDep = Annotated[VoiceApp, Depends(voice_app_ws)]

POLICY_VIOLATION = 1008
BROWSER_CALLER = "browser"


async def _refuse(websocket: WebSocket, reason: str) -> None:
    """Before accept this is an HTTP 403 at the handshake; after it, an error event and a 1008 close."""
    log.warning("browser socket refused: %s", reason)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.send_text(json.dumps({"type": "error", "message": reason[:200]}))
        await websocket.close(code=POLICY_VIOLATION, reason=reason[:120])


@router.websocket("/v1/browser")
async def browser_call(websocket: WebSocket, app: AppDep, token: Annotated[str, Query()] = "") -> None:
    try:
        claims = verify_browser_token(app.settings.call_token_secret.get_secret_value(), token)
    except CallTokenError as exc:
        await _refuse(websocket, f"invalid call token: {exc}")
        return
    if not app.accepting or claims.call_id in app.calls:
        await _refuse(websocket, "not accepting this call")
        return
    if not admits(app, claims.call_id):
        await _refuse(websocket, "the voice server is at capacity; try again shortly")
        return
    try:
        agent = await app.backend.claim_browser_call(claims.call_id, claims.nonce)
    except (BackendUnavailable, BackendRejected) as exc:
        await _refuse(websocket, f"cannot start the call: {exc}")
        return
    if agent is None or agent.org_id != claims.org_id:
        await _refuse(websocket, "call token already used or call unknown")
        return
    await websocket.accept()
    try:
        info = parse_browser_start(
            await asyncio.wait_for(websocket.receive_text(), app.settings.media_start_timeout_s), claims.call_id)
    except WebSocketDisconnect:
        return
    except (StartError, TimeoutError, KeyError) as exc:
        await _refuse(websocket, f"{type(exc).__name__}: {exc}")
        return
    app.outbox.emit(CallStarted(
        event_id=f"{claims.call_id}-started"[:64], call_id=claims.call_id, org_id=agent.org_id,
        agent_id=agent.agent_id, agent_version=agent.agent_version, direction="inbound", carrier="browser",
        carrier_call_id=claims.call_id, from_number=BROWSER_CALLER, to_number=agent.agent_name[:64],
        voice_server_id=app.settings.voice_server_id,
    ))
    await websocket.send_text(json.dumps({"type": "ready", "call_id": claims.call_id,
                                          "sample_rate": info.out_sample_rate}))
    call_claims = CallClaims(call_id=claims.call_id, carrier="browser", carrier_call_id=claims.call_id,
                             direction="inbound", org_id=agent.org_id, agent_id=agent.agent_id)
    session = CallSession(app, call_claims, info, websocket, agent, {}, None)
    app.calls.started(session)
    try:
        await session.run()
    finally:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            if websocket.application_state == WebSocketState.CONNECTED:
                await websocket.close(code=1000)
