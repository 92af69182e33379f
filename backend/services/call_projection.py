"""Applying call events (the elected leader only): folds the pending events of each call into its documents (the
call, its transcript, one turn document per turn for search and latency analytics), projects the call into the list
read model, and queues webhooks. Events arrive through call_event_ingest.py; call_event_handlers.py says what each
event type does to a call.

Applying is idempotent (state is recomputed, turns keyed by event id, webhook deliveries keyed by webhook and event),
so re-applying after a crash changes nothing. Events for a call not known yet move to outbox_deferred and come back
when their call starts or their backoff ends; events that can never apply go to dead_letters with the reason. Every
move is insert-then-delete, so a crash between the two leaves the event in both places (applied again: harmless),
never in neither.
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
    CALL_RECORDINGS,
    CALL_TRANSCRIPTS,
    CALL_TURNS,
    CALLS,
    CALLS_ARCHIVE,
    DEAD_LETTERS,
    OUTBOX,
    OUTBOX_DEFERRED,
    OUTBOX_LANES,
    Db,
)
from backend.db.ids import day_of, utcnow
from backend.db.writes import delete_ids, insert_many_ignoring_duplicates
from backend.services.call_event_handlers import CallFold, apply_event
from backend.services.call_log import CallLog, summary_of
from backend.services.erasure import Eraser
from backend.services.leader import Leadership
from backend.services.transcripts import load_transcript, transcript_doc
from core.call_events import CallEvent, CallStarted

log = logging.getLogger(__name__)

_EVENT = TypeAdapter(CallEvent)
_USAGE_FIELDS = ("caller_audio_s", "agent_audio_s", "stt_audio_s", "llm_prompt_tokens", "llm_completion_tokens",
                 "tts_characters")
MAX_DEFERRALS = 40  # about an hour of retries for events whose call never appears
_NEVER = datetime.max.replace(tzinfo=UTC)

WebhookSink = Callable[[str, str, str, dict[str, Any], datetime], Awaitable[None]]


class _CallOutcome:
    """What applying one call's share of a batch produced, for the batch's writes."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.deferred: list[dict[str, Any]] = []
        self.dead: list[tuple[dict[str, Any], str]] = []
        self.call: dict[str, Any] | None = None  # the call's state after this batch
        self.created = False  # first seen in this batch
        self.changed = False
        self.ended_now = False  # call.ended applied in this batch: the call moves to the archive
        self.archived = False  # it had already moved to the archive before this batch
        self.transcript: dict[str, Any] | None = None
        self.turn_docs: list[dict[str, Any]] = []
        self.late_recording: dict[str, Any] | None = None


class OutboxProcessor:
    """Runs on the leader only. One instance per process; `run_once` calls never overlap.

    Where things are written, chosen for FerretDB/SQLite (where only inserts are served from an index):
    a call in progress lives in the small `calls` collection; when it ends, its final record is inserted into
    `calls_archive` and its transcript into `call_transcripts`, once; a recording registered after the end goes to
    `call_recordings`. Until then the transcript is kept in memory and as one document per turn in `call_turns`,
    from which a new leader rebuilds it.
    """

    def __init__(
        self, db: Db, call_log: CallLog, webhooks: WebhookSink, leadership: Leadership, batch_size: int = 2000,
        eraser: Eraser | None = None, lane_reads: bool = True,
    ) -> None:
        self._db = db
        self._lane_reads = lane_reads
        self._lanes_left: list[int] = []  # after a full batch: the lanes still to read one by one (_next_batch)
        self._eraser = eraser
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
        self._archived: OrderedDict[str, bool] = OrderedDict()  # calls this leader moved to the archive
        self._deferred_calls: set[str] = set()  # calls with events waiting for their call.started
        # When the earliest deferred event is due; None: not known (a new term), so look.
        self._deferred_due: datetime | None = None
        self.on_applied: Callable[[], None] | None = None  # wakes live views (services/live_calls.py)

    def _reset_caches(self) -> None:
        self._term = None
        self._calls.clear()
        self._transcripts.clear()
        self._archived.clear()
        self._deferred_due = None
        self._call_log.reset_writer_state()

    @staticmethod
    def _remember(cache: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
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
        if self._deferred_due is None or self._deferred_due <= now:
            await self._requeue_due(now)
        items, lane = await self._next_batch()
        if not items:
            return 0
        by_call: dict[str, list[dict[str, Any]]] = {}
        org_items = []
        erasures = []
        for item in items:
            if item.get("kind") == "org":
                org_items.append(item)
            elif item.get("kind") == "erase":
                erasures.append(item)
            else:
                by_call.setdefault(item["call_id"], []).append(item)
        done: list[str] = await self._erase(erasures, by_call)
        agents: dict[str, dict[str, Any] | None] = {}
        semaphore = asyncio.Semaphore(8)

        async def apply(call_id: str, call_items: list[dict[str, Any]]) -> _CallOutcome:
            async with semaphore:
                return await self._apply_call(call_id, call_items, agents)

        outcomes = await asyncio.gather(*(apply(cid, its) for cid, its in by_call.items()))
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
            for item, reason in outcome.dead:
                await self._dead_letter(item, reason)
                done.append(item["_id"])
        deferred = [i for o in outcomes for i in o.deferred]
        await self._defer(deferred)
        moved = done + [i["_id"] for i in deferred]
        if moved:
            # From a lane's batch, only that lane is read to find them (see _next_batch).
            await self._db[OUTBOX].delete_many({"_id": {"$in": moved}} if lane is None
                                               else {"lane": lane, "_id": {"$in": moved}})
        self._deferred_calls.update(i["call_id"] for i in deferred)
        created = [o.call["_id"] for o in outcomes if o.created and o.call is not None
                   and o.call["_id"] in self._deferred_calls]
        self._deferred_calls.difference_update(created)
        if created:
            # Events that arrived before their call.started can apply now, not after their backoff.
            await self._requeue([d async for d in self._db[OUTBOX_DEFERRED].find({"call_id": {"$in": created}})])
        self._resolve(moved)
        if self.on_applied is not None:
            self.on_applied()
        return len(items)

    async def _next_batch(self) -> tuple[list[dict[str, Any]], int | None]:
        """The next batch, and its lane when it was read by lane.

        Normally one read with no filter and no sort (see collections.OUTBOX): the database stops after one batch,
        and the delete of its applied events reads the small rest of the outbox. A full batch means a backlog, where
        that delete would read the whole backlog for every batch (on FerretDB, whose `$in` is not pushed down); so
        the batches after it read one lane each (an equality served by an index), and the delete reads only that
        lane. Then one read with no filter again: it also finds documents without a lane (written by an older
        release) and says whether the backlog is gone. Which calls come first does not matter; each call's events
        are ordered in _apply_call, and every event of a call is in one lane."""
        while self._lanes_left:
            lane = self._lanes_left.pop(0)
            items = [d async for d in self._db[OUTBOX].find({"lane": lane}).limit(self._batch_size)]
            if items:
                return items, lane
        items = [d async for d in self._db[OUTBOX].find().limit(self._batch_size)]
        if self._lane_reads and len(items) >= self._batch_size:
            self._lanes_left = list(range(OUTBOX_LANES))
        return items, None

    async def _erase(self, erasures: list[dict[str, Any]], by_call: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Applies erasures (services/erasure.py) before events, then drops the events of erased calls.
        Returns the outbox ids done."""
        if self._eraser is None:
            return []
        done: list[str] = []
        remaining: list[dict[str, Any]] = []
        whole = [i for i in erasures if i["scope"] == "call"]
        if whole:
            await self._eraser.erase_calls(whole)
        for item in erasures:
            call = await self._eraser.apply(item) if item["scope"] != "call" else None
            for cache in (self._calls, self._transcripts, self._archived):
                cache.pop(item["call_id"], None)
            if call is not None:
                remaining.append(call)
            done.append(item["_id"])
        if remaining:
            await self._call_log.project(remaining)
        return done + await self._eraser.screen(by_call)

    async def _write(self, outcomes: list[_CallOutcome]) -> None:
        """A few commands for the whole batch, inserts wherever possible (see the class docstring)."""
        turn_docs = [doc for o in outcomes for doc in o.turn_docs]
        if turn_docs:
            await insert_many_ignoring_duplicates(self._db, CALL_TURNS, turn_docs)
        live = [o for o in outcomes if o.call is not None and not o.archived and not o.ended_now]
        created = [o for o in live if o.created]
        clashes = await insert_many_ignoring_duplicates(self._db, CALLS, [o.call for o in created if o.call])
        updates = [o.call for o in live if o.changed and not o.created and o.call]
        updates += [c for i in sorted(clashes) if (c := created[i].call) is not None]
        if updates:
            await self._db[CALLS].bulk_write([ReplaceOne({"_id": c["_id"]}, c, upsert=True) for c in updates],
                                             ordered=False)
        ending = [o for o in outcomes if o.call is not None and o.ended_now]
        if ending:
            await self._upsert_all(CALL_TRANSCRIPTS, [transcript_doc(o.transcript or {
                "_id": o.call["_id"], "org_id": o.call["org_id"], "turns": []}) for o in ending if o.call])
            await self._upsert_all(CALLS_ARCHIVE, [o.call for o in ending if o.call])
            await delete_ids(self._db, CALLS, [o.call["_id"] for o in ending if o.call])
        archived = [o for o in outcomes if o.call is not None and o.archived]
        for o in archived:  # rare: late events for a call already archived (a scan each on FerretDB)
            if o.call is not None and o.changed:
                await self._db[CALLS_ARCHIVE].replace_one({"_id": o.call["_id"]}, o.call, upsert=True)
            if o.transcript is not None and o.turn_docs:
                await self._db[CALL_TRANSCRIPTS].replace_one({"_id": o.transcript["_id"]},
                                                             transcript_doc(o.transcript), upsert=True)
        recordings = [o.late_recording for o in outcomes if o.late_recording is not None]
        if recordings:
            await self._upsert_all(CALL_RECORDINGS, recordings)
        for o in outcomes:
            if o.call is None:
                continue
            self._remember(self._calls, o.call["_id"], o.call, 10000)
            if o.transcript is not None:
                self._remember(self._transcripts, o.call["_id"], o.transcript, 2000)
            if o.ended_now:
                self._remember(self._archived, o.call["_id"], True, 50000)

    async def _upsert_all(self, collection: str, docs: list[dict[str, Any]]) -> None:
        """Insert; the few that already exist are replaced one by one."""
        for index in await insert_many_ignoring_duplicates(self._db, collection, docs):
            await self._db[collection].replace_one({"_id": docs[index]["_id"]}, docs[index], upsert=True)

    async def archive_old_pages(self) -> int:
        """Leader only, serialised with the processor: old call-list pages move out of the hot collection."""
        async with self._lock:
            if await self._leadership.current_term() is None:
                return 0
            return await self._call_log.archive_old_pages()

    async def _defer(self, items: list[dict[str, Any]]) -> None:
        """Moves events whose call is not known yet to outbox_deferred with a backoff (the caller then deletes
        them from the outbox); after MAX_DEFERRALS they are dead-lettered instead."""
        waiting = []
        for item in items:
            deferrals = int(item.get("deferrals", 0)) + 1
            if deferrals > MAX_DEFERRALS:
                await self._dead_letter(item, "call never started (no call.started and no dialer record)")
                continue
            delay = min(0.5 * 2.0 ** min(deferrals - 1, 8), 60.0)
            waiting.append({**item, "deferrals": deferrals, "retry_at": utcnow() + timedelta(seconds=delay)})
        if not waiting:
            return
        await self._upsert_all(OUTBOX_DEFERRED, waiting)
        if self._deferred_due is not None:
            self._deferred_due = min(self._deferred_due, *(w["retry_at"] for w in waiting))

    async def _requeue_due(self, now: datetime) -> None:
        """Moves the deferred events whose backoff has ended back to the outbox (the leader wrote them all, so
        it knows when the next one is due and reads this small collection only then)."""
        waiting = [d async for d in self._db[OUTBOX_DEFERRED].find()]
        self._deferred_calls.update(d["call_id"] for d in waiting)  # a new leader learns them here
        await self._requeue([d for d in waiting if d["retry_at"] <= now])
        self._deferred_due = min((d["retry_at"] for d in waiting if d["retry_at"] > now), default=_NEVER)

    async def _requeue(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        await insert_many_ignoring_duplicates(self._db, OUTBOX, [
            {k: v for k, v in item.items() if k != "retry_at"} for item in items])
        await self._db[OUTBOX_DEFERRED].delete_many({"_id": {"$in": [i["_id"] for i in items]}})

    async def _dead_letter(self, item: dict[str, Any], reason: str) -> None:
        log.warning("dead-lettering event %s (%s): %s", item["_id"], item.get("type"), reason)
        doc = {**item, "reason": reason, "dead_at": utcnow()}
        await self._db[DEAD_LETTERS].replace_one({"_id": item["_id"]}, doc, upsert=True)

    async def _agent(self, agent_id: str, cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
        if agent_id not in cache:
            cache[agent_id] = await self._db[AGENTS].find_one({"_id": agent_id}, {"org_id": 1, "name": 1,
                                                                                  "current_version": 1})
        return cache[agent_id]

    async def _load_call(self, call_id: str, starts: bool) -> tuple[dict[str, Any] | None, bool]:
        """(call, archived). A call.started for a call neither in memory nor in progress is a new call: the
        (large) archive is not searched for it."""
        if (cached := self._calls.get(call_id)) is not None:
            return cached, call_id in self._archived
        doc = await self._db[CALLS].find_one({"_id": call_id})
        if doc is not None or starts:
            return doc, False
        doc = await self._db[CALLS_ARCHIVE].find_one({"_id": call_id})
        return doc, doc is not None

    async def _load_transcript(self, call: dict[str, Any], new: bool) -> dict[str, Any]:
        cached = self._transcripts.get(call["_id"])
        if cached is not None:
            return cached
        if new:
            return {"_id": call["_id"], "org_id": call["org_id"], "turns": []}
        return await load_transcript(self._db, call["_id"], call["org_id"])

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
        starts = any(isinstance(event, CallStarted) for _, event in parsed)
        call, archived = await self._load_call(call_id, starts)
        before = copy.deepcopy(call) if call else {}
        started_event: str | None = None
        fold: CallFold | None = None
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
            fold = fold or CallFold(call, before, archived, self._load_transcript)
            await apply_event(fold, event)
            outcome.done.append(item["_id"])
        if call is None:
            outcome.deferred.extend(i for i in items if i.get("kind") == "touch")
            outcome.done = [d for d in outcome.done if not d.startswith("touch:")]
            return outcome
        fold = fold or CallFold(call, before, archived, self._load_transcript)
        transcript, ended_event = fold.transcript, fold.ended_event
        outcome.turn_docs, outcome.late_recording = fold.turn_docs, fold.late_recording
        call["metrics"] = _metrics(call)
        outcome.ended_now = ended_event is not None and not archived
        never_started = not before.get("started_at")  # new, or queued by the dialer: no turns stored anywhere yet
        if transcript is None and (outcome.ended_now or never_started):
            transcript = await self._load_transcript(call, never_started)
        # Webhooks first (idempotent by delivery id): a crash after this point re-applies without losing them.
        if started_event and not before.get("started_at"):
            await self._webhooks(call["org_id"], "call.started", started_event, _public_call(call), call["started_at"])
        if ended_event and not before.get("ended_at"):
            await self._webhooks(call["org_id"], "call.ended", ended_event, _public_call(call), call["ended_at"])
            turns = (transcript or await self._load_transcript(call, never_started))["turns"]
            await self._webhooks(call["org_id"], "call.transcript", f"{ended_event}:transcript",
                                 {"call_id": call_id, "turns": [_public_turn(t) for t in turns]}, call["ended_at"])
        outcome.transcript = transcript
        if archived and outcome.late_recording is not None:  # kept apart: no rewrite of the archived call for it
            outcome.changed = {k: v for k, v in call.items() if k != "recording"} != {
                k: v for k, v in before.items() if k != "recording"}
        else:
            outcome.changed = call != before
        outcome.archived = archived
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
