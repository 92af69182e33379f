"""Media WebSockets. A socket without a valid call token is refused:
- Vobiz carries the token in the URL path, so a bad one is refused at the handshake (HTTP 403);
- Twilio carries it in start.customParameters, so the socket is closed (1008) before any audio is processed.
The token must also match the carrier's call id in `start`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from core.call_events import ResolvedAgent
from pipelines.streaming import StreamingAudio
from telephony.call_token import CallClaims, CallTokenError, verify_call_token
from voice_server.media.serializers import StartError, StreamInfo, parse_twilio_start, parse_vobiz_start
from voice_server.routes.deps import voice_app_ws
from voice_server.session import CallSession
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)
router = APIRouter(tags=["media"])

AppDep = Annotated[VoiceApp, Depends(voice_app_ws)]

POLICY_VIOLATION = 1008
MAX_PRELUDE_MESSAGES = 5  # `connected` (Twilio), then `start`


async def _read_start(websocket: WebSocket, timeout_s: float) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        for _ in range(MAX_PRELUDE_MESSAGES):
            text = await websocket.receive_text()
            if len(text) > 64 * 1024:
                raise StartError("oversized frame before start")
            try:
                message = json.loads(text)
            except ValueError as exc:
                raise StartError("invalid JSON before start") from exc
            if isinstance(message, dict) and message.get("event") == "start":
                return message
        raise StartError("no start event")

    return await asyncio.wait_for(read(), timeout_s)


async def _refuse(websocket: WebSocket, reason: str) -> None:
    log.warning("media socket refused: %s", reason)
    try:
        await websocket.close(code=POLICY_VIOLATION, reason=reason[:120])
    except RuntimeError:
        pass


@router.websocket("/ws/twilio")
async def twilio_media(websocket: WebSocket, app: AppDep) -> None:
    await websocket.accept()
    try:
        message = await _read_start(websocket, app.settings.media_start_timeout_s)
        info = parse_twilio_start(message)
        claims = verify_call_token(app.settings.call_token_secret.get_secret_value(),
                                   info.custom_parameters.get("token", ""))
    except WebSocketDisconnect:
        return
    except (StartError, CallTokenError, TimeoutError, ValueError) as exc:
        await _refuse(websocket, f"{type(exc).__name__}: {exc}")
        return
    await _run(app, websocket, claims, info)


@router.websocket("/ws/vobiz/{token}")
async def vobiz_media(websocket: WebSocket, token: str, app: AppDep) -> None:
    try:
        claims = verify_call_token(app.settings.call_token_secret.get_secret_value(), token)
    except CallTokenError as exc:
        await _refuse(websocket, f"invalid call token: {exc}")  # before accept: the handshake gets 403
        return
    await websocket.accept()
    try:
        message = await _read_start(websocket, app.settings.media_start_timeout_s)
        info = parse_vobiz_start(message)
    except WebSocketDisconnect:
        return
    except (StartError, TimeoutError, ValueError) as exc:
        await _refuse(websocket, f"{type(exc).__name__}: {exc}")
        return
    await _run(app, websocket, claims, info)


async def _agent_for(app: VoiceApp, claims: CallClaims) -> tuple[ResolvedAgent | None, dict[str, str]]:
    """The call was answered on another replica (or the prepared state expired): fetch what it needs again."""
    if claims.direction == "outbound":
        match = await app.agents.find(outbound_call_id=claims.call_id)
    else:
        match = await app.agents.find(agent_id=claims.agent_id, numbers=(claims.to_number,))
    return match.agent, match.variables


async def _run(app: VoiceApp, websocket: WebSocket, claims: CallClaims, info: StreamInfo) -> None:
    if claims.carrier != info.carrier or claims.carrier_call_id != info.carrier_call_id:
        await _refuse(websocket, "call token does not belong to this call")
        return
    reconnect = app.calls.may_reconnect(claims.call_id)
    if reconnect is False or claims.call_id in app.calls:
        await _refuse(websocket, "call already ended or already streaming")
        return
    prepared = app.prepared.take(claims.call_id)
    greeting_audio: StreamingAudio | None = None
    agent: ResolvedAgent | None
    if prepared is not None:
        agent, variables = prepared.agent, prepared.variables
        if prepared.out_sample_rate == info.out_sample_rate:
            greeting_audio = prepared.greeting  # may still be arriving: playback starts with what is there
    else:
        agent, variables = await _agent_for(app, claims)
    if agent is None:
        await _refuse(websocket, "agent not found for this call")
        return
    session = CallSession(app, claims, info, websocket, agent, variables, greeting_audio,
                          speak_greeting=reconnect is None)
    app.calls.started(session)
    await session.run()
