"""Take-over: a supervisor's browser joins a live call and the agent steps out (voice_server/media/takeover.py).

The backend authorises (owners and admins) and audits the supervisor, then hands the browser this socket's URL on
the replica holding the call and a one-minute `takeover` ticket for that call (core/listen_ticket.py). The ticket
is the socket's first message, never in the URL. Then the socket speaks the browser test-call protocol
(voice_server/media/browser.py): the server sends `{"type":"ready","call_id":…,"sample_rate":N}` and the caller's
audio as binary PCM16 mono at N Hz; the browser sends its microphone as binary PCM16 mono 16 kHz frames (at most
half a second each), and `{"type":"hangup"}` (or just closes) to hand the call back to the agent. When the call
ends: `{"type":"end"}` and close 1000. Close codes: 4401 bad ticket, 4404 call not live here, 4409 already taken
over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from voice_server.media.browser import MAX_AUDIO_FRAME_BYTES
from voice_server.media.takeover import Takeover
from voice_server.routes.deps import admit_supervisor, dropping_queue, voice_app_ws
from voice_server.state import VoiceApp

router = APIRouter(tags=["media"])
AppDep = Annotated[VoiceApp, Depends(voice_app_ws)]
QUEUE_FRAMES = 500  # about 10 s of 20 ms caller frames; a supervisor further behind loses the oldest


async def _supervisor_to_caller(websocket: WebSocket, takeover: Takeover) -> None:
    """Until the supervisor hands back (hangup message or close)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            if 0 < len(data) <= MAX_AUDIO_FRAME_BYTES:
                await takeover.say(data[: len(data) - len(data) % 2])
            continue
        with contextlib.suppress(ValueError, TypeError):
            if json.loads(message.get("text") or "").get("type") == "hangup":
                return


async def _caller_to_supervisor(websocket: WebSocket, queue: asyncio.Queue[bytes]) -> None:
    while True:
        await websocket.send_bytes(await queue.get())


@router.websocket("/v1/takeover/{call_id}")
async def take_over(websocket: WebSocket, call_id: str, app: AppDep) -> None:
    live = await admit_supervisor(websocket, app, call_id, "takeover")
    if live is None:
        return
    queue, caller_audio = dropping_queue(QUEUE_FRAMES)
    takeover = await live.take_over(caller_audio)
    if takeover is None:
        await websocket.close(code=4409, reason="the call is already taken over or ending")
        return
    tasks = [asyncio.create_task(_supervisor_to_caller(websocket, takeover)),
             asyncio.create_task(_caller_to_supervisor(websocket, queue)),
             asyncio.create_task(live.finished.wait())]
    try:
        await websocket.send_text(json.dumps({"type": "ready", "call_id": live.call_id,
                                              "sample_rate": takeover.caller_sample_rate}))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if live.finished.is_set():
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.send_text(json.dumps({"type": "end", "reason": "call ended"}))
                await websocket.close(code=1000, reason="call ended")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a socket error ends its task: nothing to report
        takeover.hand_back(call_live=not live.finished.is_set())
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1000, reason="handed back to the agent")
