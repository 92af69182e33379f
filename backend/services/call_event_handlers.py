"""How each kind of call event changes a call: one handler per event type (call.started, which may create the call,
is call_projection.py's own). A handler folds one event into the call's state for the current batch (`CallFold`);
the projection writes the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from backend.services.transcripts import add_turn, turn_doc
from core.call_events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    FlowNodeEntered,
    RecordingStored,
    ServiceDegraded,
    ToolInvoked,
    TurnRecorded,
)

_END_STATUS = {
    "busy": "busy", "no_answer": "no_answer", "failed": "failed", "rejected": "failed", "error": "failed",
    "voice_server_lost": "failed", "unknown_number": "failed", "canceled": "canceled", "voicemail": "voicemail",
}
_NOT_ANSWERED = {"busy", "no_answer", "failed", "rejected", "canceled", "voicemail", "unknown_number"}

TranscriptLoader = Callable[[dict[str, Any], bool], Awaitable[dict[str, Any]]]


@dataclass
class CallFold:
    """One call's state while a batch of its events is applied."""

    call: dict[str, Any]
    before: dict[str, Any]  # the call as it was before this batch ({} when new)
    archived: bool
    load_transcript: TranscriptLoader
    transcript: dict[str, Any] | None = None
    turn_docs: list[dict[str, Any]] = field(default_factory=list)
    ended_event: str | None = None  # the call.ended that ended the call in this batch
    late_recording: dict[str, Any] | None = None  # a recording registered after the call was archived


async def _answered(fold: CallFold, event: CallAnswered) -> None:
    fold.call["answered"] = True
    fold.call["answered_at"] = min(fold.call.get("answered_at") or event.at, event.at)


async def _turn(fold: CallFold, event: TurnRecorded) -> None:
    if fold.transcript is None:
        fold.transcript = await fold.load_transcript(fold.call, not fold.before.get("started_at"))
    add_turn(fold.transcript, event)
    fold.turn_docs.append(turn_doc(fold.call, event))
    # For the live view: how far the call has got, and the latest voice-to-voice latency.
    fold.call["turn_count"] = len(fold.transcript["turns"])
    if event.latency is not None and event.latency.voice_to_voice_ms is not None:
        fold.call["last_v2v_ms"] = event.latency.voice_to_voice_ms


async def _tool(fold: CallFold, event: ToolInvoked) -> None:
    tools = fold.call.setdefault("tools", [])
    if all(t.get("event_id") != event.event_id for t in tools):
        tools.append({"event_id": event.event_id, "name": event.name, "ok": event.ok,
                      "duration_ms": event.duration_ms, "detail": event.detail[:2000], "at": event.at,
                      "arguments": event.arguments, "status_code": event.status_code})


async def _degraded(fold: CallFold, event: ServiceDegraded) -> None:
    steps = fold.call.setdefault("degradations", [])
    if len(steps) < 200 and all(d.get("event_id") != event.event_id for d in steps):
        steps.append({"event_id": event.event_id, "service": event.service, "at": event.at,
                      "from_endpoint": event.from_endpoint, "to": event.to, "reason": event.reason})


async def _flow_node(fold: CallFold, event: FlowNodeEntered) -> None:
    path = fold.call.setdefault("flow_path", [])
    if len(path) < 500 and all(p.get("event_id") != event.event_id for p in path):
        path.append({"event_id": event.event_id, "node": event.node, "from_node": event.from_node,
                     "via": event.via, "at_ms": event.at_ms, "at": event.at})
        path.sort(key=lambda p: p["at_ms"])
        fold.call["flow_variables"] = {**(fold.call.get("flow_variables") or {}), **event.variables}


async def _ended(fold: CallFold, event: CallEnded) -> None:
    call = fold.call
    if call.get("ended_at") is None:
        fold.ended_event = event.event_id
    if call.get("ended_at") is not None and call["ended_at"] <= event.at:
        return  # the first end wins; a later duplicate end changes nothing
    call["ended_at"] = event.at
    call["end_reason"] = event.end_reason
    call["end_detail"] = event.detail[:2000]
    call["duration_s"] = event.duration_s
    call["usage"] = event.usage.model_dump()
    call["status"] = _END_STATUS.get(event.end_reason, "completed")
    if event.end_reason in _NOT_ANSWERED:
        call["answered"] = False
        call["answered_at"] = None


async def _recording(fold: CallFold, event: RecordingStored) -> None:
    fold.call["recording"] = {"bucket": event.bucket, "key": event.key, "size_bytes": event.size_bytes,
                              "duration_s": event.duration_s, "sample_rate": event.sample_rate,
                              "channels": event.channels}
    if fold.archived:
        fold.late_recording = {"_id": fold.call["_id"], "org_id": fold.call["org_id"], **fold.call["recording"]}


Handler = Callable[[CallFold, Any], Awaitable[None]]
HANDLERS: dict[type[Any], Handler] = {
    CallAnswered: _answered, TurnRecorded: _turn, ToolInvoked: _tool, ServiceDegraded: _degraded,
    FlowNodeEntered: _flow_node,
    CallEnded: _ended, RecordingStored: _recording,
}


async def apply_event(fold: CallFold, event: CallEvent) -> None:
    await HANDLERS[type(event)](fold, event)
