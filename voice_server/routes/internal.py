"""Service-to-service endpoints (service token): per-call latency for the simulator and benchmarks, a live call's
feed and whisper for the backend's live view, a campaign call's carrier AMD verdict relayed by the backend, drain
and status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from telephony.base import MachineDetection
from voice_server.routes.deps import require_service_token, voice_app
from voice_server.state import VoiceApp

router = APIRouter(prefix="/internal/v1", tags=["internal"], dependencies=[Depends(require_service_token)])
AppDep = Annotated[VoiceApp, Depends(voice_app)]


@router.get("/calls/{call_id}/latency")
async def call_latency(call_id: str, app: AppDep) -> dict[str, Any]:
    """Per-turn stage times (monotonic clock, comparable with the simulator's on the same host). `call_id` may
    also be the carrier's call id."""
    entry = app.calls.latency_of(call_id)
    if entry is None:
        live = app.calls.find_live(call_id)
        if live is None or live.call is None:
            raise HTTPException(status_code=404, detail="no latency record for this call")
        turns = [{"stages": t.stages(), "latency": t.latency().model_dump(), "smart_turn_ms": t.smart_turn_ms}
                 for t in live.call.latency.completed]
        return {"call_id": live.call_id, "live": True, "t0_monotonic": live.tracker.t0, "turns": turns}
    return {"live": False, **asdict(entry)}


class WhisperIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000)


@router.post("/calls/{call_id}/whisper", status_code=204)
async def whisper(call_id: str, body: WhisperIn, app: AppDep) -> None:
    """From the backend (a supervisor, already authorised and audited there): an instruction for the agent."""
    live = app.calls.find_live(call_id)
    if live is None or live.call is None:
        raise HTTPException(status_code=404, detail="call not live on this voice server")
    await live.whisper(body.text)


class MachineDetectionIn(BaseModel):
    answered_by: str = Field(pattern=r"^[a-z_]{1,40}$", description="Twilio's vocabulary (Vobiz's is mapped onto it)")
    carrier_call_id: str = Field(default="", max_length=100)
    message: str | None = Field(default=None, min_length=1, max_length=1000,
                                description="Leave this instead of the agent's own voicemail message")


@router.post("/calls/{call_id}/machine-detection", status_code=204)
async def machine_detection(call_id: str, body: MachineDetectionIn, app: AppDep) -> None:
    """From the backend: a campaign call's carrier AMD verdict (the carrier called the backend's campaign callback),
    for the call's in-call voicemail detector, which then leaves the message in the agent's own voice. 404 when the
    call is not live here or detects nothing in the call: the backend then acts on the verdict itself."""
    live = app.calls.find_live(call_id)
    detector = live.call.voicemail if live is not None and live.call is not None else None
    if detector is None:
        raise HTTPException(status_code=404, detail="no in-call voicemail detection for this call here")
    await detector.carrier_verdict(MachineDetection(body.answered_by, body.carrier_call_id), body.message)


@router.get("/calls/{call_id}/live", response_class=StreamingResponse)
async def live_feed(call_id: str, app: AppDep) -> StreamingResponse:
    """For the backend's live view: NDJSON lines of core/live_feed.py's LiveFeedEvent (interim caller text, a
    note of each final turn) from now until the call ends. Interims are asked of the STT while someone watches."""
    live = app.calls.find_live(call_id)
    if live is None:
        raise HTTPException(status_code=404, detail="call not live on this voice server")
    queue = live.feed.subscribe()

    async def lines() -> AsyncIterator[str]:
        try:
            yield "\n"  # headers out at once: the backend knows the feed is open
            while (event := await queue.get()) is not None:
                yield event.model_dump_json() + "\n"
        finally:
            live.feed.unsubscribe(queue)

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})


def _count_wavs(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.wav")) if folder.is_dir() else 0


@router.post("/drain", status_code=202)
async def drain(app: AppDep, exit: bool = True) -> dict[str, Any]:
    """Stop taking new calls, let the live ones finish, then exit (exit=false: stay up, not ready). Same as
    SIGTERM; for a supervisor that cannot send signals."""
    app.drain.begin(exit_after=exit)
    return app.drain.status()


@router.get("/status")
async def status(app: AppDep) -> dict[str, Any]:
    return {
        "accepting": app.accepting,
        "live_calls": app.calls.ids(),
        "outbox_pending": app.outbox.pending,
        "events_delivered": app.outbox.delivered,
        "outbox_failures": app.outbox.failures,  # delivery rounds that failed and were retried with backoff
        "heartbeats_sent": app.heartbeat.sent,
        "recordings_pending": await asyncio.to_thread(_count_wavs, app.uploader.pending_dir),
        "recordings_uploaded": app.uploader.uploaded,
        # Degradation chains: each endpoint's circuit breaker, and how many prompt clips are recorded.
        "breakers": [asdict(b) for b in app.call_services.breakers.snapshots()],
        "prompt_clips": app.call_services.clips.count() if app.call_services.clips is not None else 0,
    }
