"""Call events from the voice server and dialer: accepted once, applied by one writer.

Ingest (any replica): each event is inserted into the outbox, keyed by `event_id` with a unique `_id`, so a retried
batch is recognised event by event and nothing is stored twice: an event already in the outbox is pending; one the
permanent event log already holds was applied before (its new outbox entry is dropped again). The processor writes
the log before it removes applied events from the outbox, so there is no moment when a retry could slip through.

Apply (the elected leader, OutboxProcessor): folds the pending events of each call into its documents (the call, its
transcript, one turn document per turn for search and latency analytics), projects the call into the list read
model, and queues webhooks. Applying is idempotent (state is recomputed, turns keyed by event id, webhook deliveries
keyed by webhook and event), so re-applying after a crash changes nothing. Events for a call not known yet wait in
the outbox and are retried; events that can never apply go to dead_letters with the reason.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pymongo import ReplaceOne

from backend.db.collections import (
    AGENTS,
    CALL_EVENTS,
    CALL_TRANSCRIPTS,
    CALL_TURNS,
    CALLS,
    DEAD_LETTERS,
    OUTBOX,
    Db,
)
from backend.db.ids import day_of, new_id, utcnow
from backend.db.group_insert import GroupInserter
from backend.db.writes import insert_many_ignoring_duplicates
from backend.errors import ApiError, ErrorDetail
from backend.models.internal import OrgEventIn
from backend.services.call_log import CallLog, summary_of
from backend.services.leader import Leadership
from core.call_events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallEventAck,
    CallEventBatch,
    CallStarted,
    RecordingStored,
    ToolInvoked,
    TurnRecorded,
)

log = logging.getLogger(__name__)

_EVENT = TypeAdapter(CallEvent)
_USAGE_FIELDS = ("caller_audio_s", "agent_audio_s", "stt_audio_s", "llm_prompt_tokens", "llm_completion_tokens",
                 "tts_characters")
_END_STATUS = {
    "busy": "busy", "no_answer": "no_answer", "failed": "failed", "rejected": "failed", "error": "failed",
    "voice_server_lost": "failed", "unknown_number": "failed", "canceled": "canceled", "voicemail": "voicemail",
}
_NOT_ANSWERED = {"busy", "no_answer", "failed", "rejected", "canceled", "voicemail", "unknown_number"}
MAX_DEFERRALS = 40  # about an hour of retries for events whose call never appears

WebhookSink = Callable[[str, str, str, dict[str, Any], datetime], Awaitable[None]]


class CallEventIngest:
    def __init__(self, db: Db, recordings_bucket: str, on_accepted: Callable[[list[str]], Awaitable[None]]) -> None:
        self._db = db
        self._bucket = recordings_bucket
        self._on_accepted = on_accepted
        self._outbox = GroupInserter(db, OUTBOX)

    async def ingest(self, batch: CallEventBatch, source: str) -> CallEventAck:
        for i, event in enumerate(batch.events):
            if isinstance(event, RecordingStored) and event.bucket != self._bucket:
                path = f"body.events.{i}.bucket"
                raise ApiError(422, "validation_error", f"{path}: recordings live in bucket '{self._bucket}'",
                               [ErrorDetail(path=path, message=f"must be '{self._bucket}'", type="value_error")])
        now = utcnow()
        unique: dict[str, CallEvent] = {}
        for event in batch.events:
            unique.setdefault(event.event_id, event)
        events = list(unique.values())
        in_batch_duplicates = len(batch.events) - len(events)
        pending = [
            {"_id": e.event_id, "kind": "call", "call_id": e.call_id, "type": e.type, "at": e.at, "received_at": now,
             "source": source, "retry_at": None, "deferrals": 0, "event_json": e.model_dump_json()}
            for e in events
        ]
        already_pending = await self._outbox.insert(pending)
        queued = [i for i in range(len(events)) if i not in already_pending]
        already_applied = await self._already_applied([events[i].event_id for i in queued])
        duplicates = already_pending | {i for i in queued if events[i].event_id in already_applied}
        accepted_ids = [e.event_id for i, e in enumerate(events) if i not in duplicates]
        if accepted_ids:
            await self._on_accepted(accepted_ids)
        return CallEventAck(accepted=len(accepted_ids), duplicates=len(duplicates) + in_batch_duplicates)

    async def _already_applied(self, event_ids: list[str]) -> set[str]:
        """Of events just queued, those the event log shows were applied before (a retry after its acknowledgement
        was lost); their new outbox entries are dropped again. One read by _id per event: cheaper than a write."""
        found = await asyncio.gather(*(self._db[CALL_EVENTS].find_one({"_id": e}, {"_id": 1}) for e in event_ids))
        applied = {doc["_id"] for doc in found if doc is not None}
        for event_id in applied:
            await self._db[OUTBOX].delete_one({"_id": event_id})
        return applied

    async def touch(self, call_id: str) -> None:
        """Asks the processor to (re)project a call written outside the event stream (the dialer's queued call)."""
        doc: dict[str, Any] = {"_id": f"touch:{call_id}:{new_id()}", "kind": "touch", "call_id": call_id, "type": "touch",
               "at": utcnow(), "received_at": utcnow(), "retry_at": None, "deferrals": 0}
        await self._db[OUTBOX].insert_one(doc)
        await self._on_accepted([doc["_id"]])

    async def ingest_org_event(self, event: OrgEventIn, source: str) -> bool:
        """True when new."""
        doc = {"_id": event.event_id, "kind": "org", "org_id": event.org_id, "type": event.type, "at": event.at,
               "received_at": utcnow(), "source": source, "retry_at": None, "deferrals": 0,
               "event_json": event.model_dump_json()}
        dup_pending = await self._outbox.insert([doc])
        dup_logged = set() if dup_pending else await self._already_applied([event.event_id])
        new = not (dup_pending or dup_logged)
        if new:
            await self._on_accepted([event.event_id])
        return new


class _CallOutcome:
    def __init__(self) -> None:
        self.done: list[str] = []
        self.deferred: list[dict[str, Any]] = []
        self.dead: list[tuple[dict[str, Any], str]] = []
        self.call: dict[str, Any] | None = None
        self.created = False
        self.call_changed = False
        self.transcript: dict[str, Any] | None = None
        self.turn_docs: list[dict[str, Any]] = []


class OutboxProcessor:
    """Runs on the leader only. One instance per process; `run_once` calls never overlap."""

    def __init__(
        self, db: Db, call_log: CallLog, webhooks: WebhookSink, leadership: Leadership, batch_size: int = 500
    ) -> None:
        self._db = db
        self._call_log = call_log
        self._webhooks = webhooks
        self._leadership = leadership
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        # As the only writer of calls and transcripts, the leader can keep the recent ones in memory.
        self._term: int | None = None
        self._calls: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._transcripts: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _reset_caches(self) -> None:
        self._term = None
        self._calls.clear()
        self._transcripts.clear()
        self._call_log.reset_writer_state()

    @staticmethod
    def _remember(cache: OrderedDict[str, dict[str, Any]], key: str, value: dict[str, Any], size: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)

    # ---------------------------------------------------------------- waiting for application

    def watch(self, event_ids: list[str]) -> list[asyncio.Future[None]]:
        loop = asyncio.get_running_loop()
        futures = []
        for event_id in event_ids:
            fut = self._waiters.get(event_id)
            if fut is None or fut.done():
                fut = loop.create_future()
                self._waiters[event_id] = fut
            futures.append(fut)
        return futures

    def forget(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            fut = self._waiters.pop(event_id, None)
            if fut is not None and not fut.done():
                fut.cancel()

    def _resolve(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            fut = self._waiters.pop(event_id, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    # ---------------------------------------------------------------- applying

    async def run_once(self) -> int:
        async with self._lock:
            term = await self._leadership.current_term()
            if term is None:
                return 0
            if term != self._term:
                self._reset_caches()
                self._term = term
            self._call_log.begin_write_term(term)
            try:
                return await self._run_batch()
            except BaseException:
                self._reset_caches()  # a half-applied batch: re-read everything from the database next time
                raise

    async def _run_batch(self) -> int:
        now = utcnow()
        query = {"$or": [{"retry_at": None}, {"retry_at": {"$lte": now}}]}
        items = [d async for d in self._db[OUTBOX].find(query).sort("received_at", 1).limit(self._batch_size)]
        if not items:
            return 0
        by_call: dict[str, list[dict[str, Any]]] = {}
        org_items = []
        for item in items:
            if item.get("kind") == "org":
                org_items.append(item)
            else:
                by_call.setdefault(item["call_id"], []).append(item)
        agents: dict[str, dict[str, Any] | None] = {}
        semaphore = asyncio.Semaphore(8)

        async def apply(call_id: str, call_items: list[dict[str, Any]]) -> _CallOutcome:
            async with semaphore:
                return await self._apply_call(call_id, call_items, agents)

        outcomes = await asyncio.gather(*(apply(cid, its) for cid, its in by_call.items()))
        done: list[str] = []
        for item in org_items:
            event = json.loads(item["event_json"])
            await self._webhooks(event["org_id"], event["type"], item["_id"], event.get("data", {}), item["at"])
            done.append(item["_id"])
        await self._write(outcomes)
        changed_calls = [o.call for o in outcomes if o.call is not None]
        if changed_calls:
            await self._call_log.project(changed_calls)
        for outcome in outcomes:
            done.extend(outcome.done)
            for item in outcome.deferred:
                await self._defer(item)
            for item, reason in outcome.dead:
                await self._dead_letter(item, reason)
                done.append(item["_id"])
        if done:
            # The permanent log first, then out of the outbox: a retry of these events is then a duplicate.
            handled = [i for i in items if i["_id"] in set(done) and i.get("kind") != "touch"]
            await insert_many_ignoring_duplicates(self._db, CALL_EVENTS, [
                {"_id": i["_id"], "call_id": i.get("call_id"), "type": i.get("type"), "at": i.get("at"),
                 "received_at": i.get("received_at")} for i in handled])
            await self._db[OUTBOX].delete_many({"_id": {"$in": done}})
        created = [o.call["_id"] for o in outcomes if o.created and o.call is not None]
        if created:
            # Events that arrived before their call.started can apply now, not after their backoff.
            await self._db[OUTBOX].update_many({"call_id": {"$in": created}, "retry_at": {"$ne": None}},
                                               {"$set": {"retry_at": None}})
        self._resolve(done + [i["_id"] for o in outcomes for i in o.deferred])
        return len(items)

    async def _write(self, outcomes: list[_CallOutcome]) -> None:
        """One round trip per collection for the whole batch: turns, transcripts, then calls."""
        turn_docs = [doc for o in outcomes for doc in o.turn_docs]
        if turn_docs:
            await insert_many_ignoring_duplicates(self._db, CALL_TURNS, turn_docs)
        transcripts = [o.transcript for o in outcomes if o.transcript is not None]
        if transcripts:
            await self._db[CALL_TRANSCRIPTS].bulk_write([
                ReplaceOne({"_id": t["_id"]}, {"_id": t["_id"], "org_id": t["org_id"], "count": len(t["turns"]),
                                               "turns_json": json.dumps(t["turns"], separators=(",", ":"))},
                           upsert=True)
                for t in transcripts
            ], ordered=False)
            for t in transcripts:
                self._remember(self._transcripts, t["_id"], t, 2000)
        calls = [o.call for o in outcomes if o.call is not None and o.call_changed]
        if calls:
            await self._db[CALLS].bulk_write([ReplaceOne({"_id": c["_id"]}, c, upsert=True) for c in calls],
                                             ordered=False)
        for o in outcomes:
            if o.call is not None:
                self._remember(self._calls, o.call["_id"], o.call, 10000)

    async def _defer(self, item: dict[str, Any]) -> None:
        deferrals = int(item.get("deferrals", 0)) + 1
        if deferrals > MAX_DEFERRALS:
            await self._dead_letter(item, "call never started (no call.started and no dialer record)")
            await self._db[OUTBOX].delete_one({"_id": item["_id"]})
            return
        delay = min(0.5 * 2.0 ** min(deferrals - 1, 8), 60.0)
        await self._db[OUTBOX].update_one({"_id": item["_id"]}, {"$set": {
            "deferrals": deferrals, "retry_at": utcnow() + timedelta(seconds=delay)}})

    async def _dead_letter(self, item: dict[str, Any], reason: str) -> None:
        log.warning("dead-lettering event %s (%s): %s", item["_id"], item.get("type"), reason)
        doc = {**item, "reason": reason, "dead_at": utcnow()}
        await self._db[DEAD_LETTERS].replace_one({"_id": item["_id"]}, doc, upsert=True)

    async def _agent(self, agent_id: str, cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
        if agent_id not in cache:
            cache[agent_id] = await self._db[AGENTS].find_one({"_id": agent_id}, {"org_id": 1, "name": 1,
                                                                                  "current_version": 1})
        return cache[agent_id]

    async def _apply_call(
        self, call_id: str, items: list[dict[str, Any]], agents: dict[str, dict[str, Any] | None]
    ) -> _CallOutcome:
        outcome = _CallOutcome()
        parsed: list[tuple[dict[str, Any], CallEvent]] = []
        for item in items:
            if item.get("kind") == "touch":
                outcome.done.append(item["_id"])
                continue
            try:
                parsed.append((item, _EVENT.validate_json(item["event_json"])))
            except ValidationError as exc:
                outcome.dead.append((item, f"invalid event: {exc.errors()[:3]}"))
        # call.started first, then by time, so everything else finds the call.
        parsed.sort(key=lambda pair: (0 if isinstance(pair[1], CallStarted) else 1, pair[1].at))
        call = self._calls.get(call_id) or await self._db[CALLS].find_one({"_id": call_id})
        before = copy.deepcopy(call) if call else {}
        transcript: dict[str, Any] | None = None
        turn_docs: list[dict[str, Any]] = []
        started_event: str | None = None
        ended_event: str | None = None
        for item, event in parsed:
            if isinstance(event, CallStarted):
                if call is not None and call["org_id"] != event.org_id:
                    outcome.dead.append((item, "call.started names another organisation than the call"))
                    continue
                call = await self._on_started(call, event, agents)
                started_event = started_event or event.event_id
                outcome.done.append(item["_id"])
                continue
            if call is None:
                outcome.deferred.append(item)
                continue
            if isinstance(event, CallAnswered):
                call["answered"] = True
                call["answered_at"] = min(call.get("answered_at") or event.at, event.at)
            elif isinstance(event, TurnRecorded):
                if transcript is None:
                    transcript = self._transcripts.get(call_id)
                if transcript is None:  # a call first seen in this batch has no stored transcript yet
                    transcript = ({"_id": call_id, "org_id": call["org_id"], "turns": []} if not before
                                  else await load_transcript(self._db, call_id, call["org_id"]))
                _add_turn(transcript, event)
                turn_docs.append(_turn_doc(call, event))
            elif isinstance(event, ToolInvoked):
                tools = call.setdefault("tools", [])
                if all(t.get("event_id") != event.event_id for t in tools):
                    tools.append({"event_id": event.event_id, "name": event.name, "ok": event.ok,
                                  "duration_ms": event.duration_ms, "detail": event.detail[:2000], "at": event.at})
            elif isinstance(event, CallEnded):
                if call.get("ended_at") is None:
                    ended_event = event.event_id
                _on_ended(call, event)
            elif isinstance(event, RecordingStored):
                call["recording"] = {"bucket": event.bucket, "key": event.key, "size_bytes": event.size_bytes,
                                     "duration_s": event.duration_s, "sample_rate": event.sample_rate,
                                     "channels": event.channels}
            outcome.done.append(item["_id"])
        if call is None:
            outcome.deferred.extend(i for i in items if i.get("kind") == "touch")
            outcome.done = [d for d in outcome.done if not d.startswith("touch:")]
            return outcome
        call["metrics"] = _metrics(call)
        # Webhooks first (idempotent by delivery id): a crash after this point re-applies without losing them.
        if started_event and not before.get("started_at"):
            await self._webhooks(call["org_id"], "call.started", started_event, _public_call(call), call["started_at"])
        if ended_event and not before.get("ended_at"):
            await self._webhooks(call["org_id"], "call.ended", ended_event, _public_call(call), call["ended_at"])
            turns = (transcript or self._transcripts.get(call_id)
                     or await load_transcript(self._db, call_id, call["org_id"]))["turns"]
            await self._webhooks(call["org_id"], "call.transcript", f"{ended_event}:transcript",
                                 {"call_id": call_id, "turns": [_public_turn(t) for t in turns]}, call["ended_at"])
        # The writes themselves are batched across calls by _run_batch.
        outcome.turn_docs = turn_docs
        outcome.transcript = transcript
        outcome.call_changed = call != before
        outcome.call = call
        outcome.created = not before
        if outcome.created:
            self._call_log.note_new_call(call_id)
        return outcome

    async def _on_started(
        self, call: dict[str, Any] | None, event: CallStarted, agents: dict[str, dict[str, Any] | None]
    ) -> dict[str, Any]:
        if call is None:
            call = {
                "_id": event.call_id, "org_id": event.org_id, "created_at": event.at, "day": day_of(event.at),
                "status": "queued", "answered": False, "variables": {}, "tools": [], "usage": {},
                "answered_at": None, "ended_at": None, "end_reason": None, "duration_s": None, "recording": None,
            }
        agent_id = event.agent_id or call.get("agent_id")
        agent = await self._agent(agent_id, agents) if agent_id else None
        if agent is not None and agent["org_id"] != call["org_id"]:
            log.warning("call %s names agent %s of another organisation; ignoring the agent", event.call_id, agent_id)
            agent, agent_id = None, None
        call.update({
            "agent_id": agent_id,
            "agent_version": event.agent_version or call.get("agent_version") or (agent or {}).get("current_version"),
            "agent_name": (agent or {}).get("name") or call.get("agent_name"),
            "direction": event.direction, "carrier": event.carrier,
            "carrier_call_id": event.carrier_call_id or call.get("carrier_call_id"),
            "from_number": event.from_number, "to_number": event.to_number,
            "campaign_id": event.campaign_id or call.get("campaign_id"),
            "contact_id": event.contact_id or call.get("contact_id"),
            "voice_server_id": event.voice_server_id,
        })
        call["started_at"] = min(call.get("started_at") or event.at, event.at)
        if call.get("ended_at") is None:
            call["status"] = "in_progress"
            # Media only flows once someone (or a machine) picked up; voicemail is reclassified at the end.
            call["answered"] = True
            call["answered_at"] = call.get("answered_at") or event.at
        return call


def _add_turn(transcript: dict[str, Any], event: TurnRecorded) -> None:
    turns: list[dict[str, Any]] = transcript["turns"]
    if any(t["event_id"] == event.event_id for t in turns):
        return
    turns.append({
        "event_id": event.event_id, "turn_index": event.turn_index, "speaker": event.speaker, "text": event.text,
        "start_ms": event.start_ms, "end_ms": event.end_ms, "interrupted": event.interrupted,
        "latency": event.latency.model_dump() if event.latency else None,
        "at": event.at.astimezone(UTC).isoformat(),
    })
    turns.sort(key=lambda t: (t["turn_index"], t["start_ms"]))


def _turn_doc(call: dict[str, Any], event: TurnRecorded) -> dict[str, Any]:
    v2v = event.latency.voice_to_voice_ms if event.latency else None
    return {"_id": event.event_id, "org_id": call["org_id"], "call_id": call["_id"], "agent_id": call.get("agent_id"),
            "day": day_of(event.at), "turn_index": event.turn_index, "speaker": event.speaker, "text": event.text,
            "v2v_ms": v2v, "at": event.at}


def _on_ended(call: dict[str, Any], event: CallEnded) -> None:
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


def _metrics(call: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-call numbers for analytics, each tagged with the call's day. FerretDB's $group evaluates only one
    accumulator correctly and its $unwind drops sibling fields, so analytics unwind this array and sum one field."""
    day = call["day"]
    values: dict[str, float] = {"calls": 1, call.get("direction") or "inbound": 1}
    if call.get("answered"):
        values["answered"] = 1
    if call.get("ended_at") is not None:
        values["ended"] = 1
        values["duration_s"] = float(call.get("duration_s") or 0.0)
        for name in _USAGE_FIELDS:
            values[f"usage.{name}"] = (call.get("usage") or {}).get(name, 0) or 0
    return [{"d": day, "k": k, "v": v} for k, v in values.items()]


def _public_call(call: dict[str, Any]) -> dict[str, Any]:
    summary = summary_of(call)
    summary["usage"] = call.get("usage") or {}
    return {k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v) for k, v in summary.items()}


def _public_turn(turn: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in turn.items() if k != "event_id"}


async def load_transcript(db: Db, call_id: str, org_id: str) -> dict[str, Any]:
    """The transcript as {"_id", "org_id", "turns": [...]}; stored with the turns as one JSON string (few fields
    per document keep FerretDB fast)."""
    doc = await db[CALL_TRANSCRIPTS].find_one({"_id": call_id})
    turns = json.loads(doc["turns_json"]) if doc and doc.get("turns_json") else []
    return {"_id": call_id, "org_id": doc["org_id"] if doc else org_id, "turns": turns}
