"""Listen-in: a supervisor's browser hears a live call (caller and agent mixed), read-only: nothing goes back into
the call, so the caller hears nothing.

The backend authorises and audits the supervisor, then hands the browser this socket's URL on the replica holding the
call and a one-minute ticket for that call (core/listen_ticket.py; it is no service token). The ticket is the socket's first
message, never part of the URL (URLs end up in logs). Then the server sends one JSON text frame
`{"sample_rate": N}` and binary frames of mono PCM16 as the call's recorder commits them (0.1 s blocks while someone
listens, so a few hundred ms behind the call; more when caller audio arrives late). Close codes: 4401 bad ticket,
4404 call not live here, 4409 call not recorded; 1000 when the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from voice_server.routes.deps import admit_supervisor, dropping_queue, voice_app_ws
from voice_server.state import VoiceApp

router = APIRouter(tags=["media"])
AppDep = Annotated[VoiceApp, Depends(voice_app_ws)]
QUEUE_BLOCKS = 100  # about 10 s of 0.1 s blocks; a listener that falls further behind loses the oldest


@router.websocket("/v1/listen/{call_id}")
async def listen(websocket: WebSocket, call_id: str, app: AppDep) -> None:
    live = await admit_supervisor(websocket, app, call_id, "listen")
    if live is None:
        return
    queue, sink = dropping_queue(QUEUE_BLOCKS)
    tap = live.listen(sink)
    if tap is None:
        await websocket.close(code=4409, reason="the call is not recorded; listen-in taps its recorder")
        return
    sample_rate, unsubscribe = tap
    finished = asyncio.create_task(live.finished.wait())
    try:
        await websocket.send_text(json.dumps({"sample_rate": sample_rate}))
        while not finished.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await websocket.send_bytes(getter.result())
            else:
                getter.cancel()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1000, reason="call ended")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        unsubscribe()
        finished.cancel()
