"""A call's transcript: kept as one document per turn while the call runs, written once as a whole when it ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from backend.db.collections import CALL_TRANSCRIPTS, CALL_TURNS, Db
from backend.db.ids import day_of
from core.call_events import TurnRecorded


def add_turn(transcript: dict[str, Any], event: TurnRecorded) -> None:
    turns: list[dict[str, Any]] = transcript["turns"]
    if any(t["event_id"] == event.event_id for t in turns):
        return
    turns.append({
        "event_id": event.event_id, "turn_index": event.turn_index, "speaker": event.speaker, "text": event.text,
        "start_ms": event.start_ms, "end_ms": event.end_ms, "interrupted": event.interrupted,
        "latency": event.latency.model_dump() if event.latency else None,
        "knowledge": event.knowledge.model_dump() if event.knowledge else None,
        "at": event.at.astimezone(UTC).isoformat(),
    })
    turns.sort(key=lambda t: (t["turn_index"], t["start_ms"]))


def turn_doc(call: dict[str, Any], event: TurnRecorded) -> dict[str, Any]:
    """One per turn: text search, latency analytics, and the transcript of a call in progress."""
    v2v = event.latency.voice_to_voice_ms if event.latency else None
    return {"_id": event.event_id, "org_id": call["org_id"], "call_id": call["_id"], "agent_id": call.get("agent_id"),
            "day": day_of(event.at), "turn_index": event.turn_index, "speaker": event.speaker, "text": event.text,
            "start_ms": event.start_ms, "end_ms": event.end_ms, "interrupted": event.interrupted,
            "latency": event.latency.model_dump() if event.latency else None, "v2v_ms": v2v, "at": event.at,
            "knowledge": event.knowledge.model_dump() if event.knowledge else None}


def transcript_doc(transcript: dict[str, Any]) -> dict[str, Any]:
    return {"_id": transcript["_id"], "org_id": transcript["org_id"], "count": len(transcript["turns"]),
            "turns_json": json.dumps(transcript["turns"], separators=(",", ":"))}


async def load_transcript(db: Db, call_id: str, org_id: str) -> dict[str, Any]:
    """The transcript as {"_id", "org_id", "turns": [...]}: written once when the call ends (the turns as one JSON
    string: few fields per document keep FerretDB fast); before that, rebuilt from the call's turn documents."""
    doc = await db[CALL_TRANSCRIPTS].find_one({"_id": call_id})
    if doc is not None:
        return {"_id": call_id, "org_id": doc["org_id"], "turns": json.loads(doc.get("turns_json") or "[]")}
    transcript: dict[str, Any] = {"_id": call_id, "org_id": org_id, "turns": []}
    async for turn in db[CALL_TURNS].find({"call_id": call_id, "org_id": org_id}):
        transcript["turns"].append({
            "event_id": turn["_id"], "turn_index": turn["turn_index"], "speaker": turn["speaker"],
            "text": turn["text"], "start_ms": turn.get("start_ms", 0), "end_ms": turn.get("end_ms", 0),
            "interrupted": turn.get("interrupted", False), "latency": turn.get("latency"),
            "knowledge": turn.get("knowledge"),
            "at": turn["at"].astimezone(UTC).isoformat() if isinstance(turn.get("at"), datetime) else turn.get("at"),
        })
    transcript["turns"].sort(key=lambda t: (t["turn_index"], t["start_ms"]))
    return transcript
