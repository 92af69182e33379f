"""Call events from the voice server and dialer, accepted once (any replica).

Each event goes into the outbox and then the permanent event log, both keyed by `event_id` with a unique `_id`, so a
retried batch is recognised event by event and nothing is stored twice: an event already in the outbox is pending;
one already in the log was applied or waits in outbox_deferred (its outbox entry is gone, so its new one is dropped). The outbox insert comes
first, so if the process dies between the two the event is still applied (a later retry is then applied again, which
changes nothing). Applying is call_projection.py's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.db.collections import CALL_EVENTS, OUTBOX, Db, outbox_lane
from backend.db.group_insert import GroupInserter
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail
from backend.models.internal import OrgEventIn
from core.call_events import CallEvent, CallEventAck, CallEventBatch, RecordingStored


class CallEventIngest:
    def __init__(self, db: Db, recordings_bucket: str, on_accepted: Callable[[list[str], bool], Awaitable[None]]
                 ) -> None:
        """`on_accepted(event_ids, wait)` wakes the processor; with `wait` it may also wait (bounded) until they
        are applied, so an API caller reads its own writes. The dialer passes wait=False: it never waits."""
        self._db = db
        self._bucket = recordings_bucket
        self._on_accepted = on_accepted
        # Inserts are the one operation FerretDB/SQLite serves from an index (the unique _id), so both the "pending"
        # and the "already applied" checks are inserts; concurrent requests share each insert (group commit).
        self._outbox = GroupInserter(db, OUTBOX)
        self._log = GroupInserter(db, CALL_EVENTS)

    async def ingest(self, batch: CallEventBatch, source: str, wait: bool = True) -> CallEventAck:
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
            {"_id": e.event_id, "kind": "call", "call_id": e.call_id, "lane": outbox_lane(e.call_id), "type": e.type,
             "at": e.at, "received_at": now, "source": source, "deferrals": 0, "event_json": e.model_dump_json()}
            for e in events
        ]
        already_pending = await self._outbox.insert(pending)
        # Only the request that queued an event logs it, so concurrent retries cannot both call it a duplicate.
        queued = [i for i in range(len(events)) if i not in already_pending]
        logged = [{"_id": events[i].event_id, "call_id": events[i].call_id, "type": events[i].type,
                   "at": events[i].at, "received_at": now} for i in queued]
        already_logged = {queued[j] for j in await self._log.insert(logged)}
        # Queued again only because it came back after being applied (its outbox entry was gone): drop it.
        for index in already_logged:
            await self._db[OUTBOX].delete_one({"_id": events[index].event_id})
        duplicates = already_pending | already_logged
        accepted_ids = [e.event_id for i, e in enumerate(events) if i not in duplicates]
        if accepted_ids:
            await self._on_accepted(accepted_ids, wait)
        return CallEventAck(accepted=len(accepted_ids), duplicates=len(duplicates) + in_batch_duplicates)

    async def touch(self, call_id: str, wait: bool = True) -> None:
        """Asks the processor to (re)project a call written outside the event stream (the dialer's queued call)."""
        doc: dict[str, Any] = {"_id": f"touch:{call_id}:{new_id()}", "kind": "touch", "call_id": call_id,
                               "lane": outbox_lane(call_id), "type": "touch", "at": utcnow(), "received_at": utcnow(),
                               "deferrals": 0}
        await self._db[OUTBOX].insert_one(doc)
        await self._on_accepted([doc["_id"]], wait)

    async def ingest_org_event(self, event: OrgEventIn, source: str, wait: bool = True) -> bool:
        """True when new."""
        doc = {"_id": event.event_id, "kind": "org", "org_id": event.org_id, "lane": outbox_lane(event.org_id),
               "type": event.type, "at": event.at, "received_at": utcnow(), "source": source, "deferrals": 0,
               "event_json": event.model_dump_json()}
        dup_pending = await self._outbox.insert([doc])
        dup_logged: set[int] = set()
        if not dup_pending:
            dup_logged = await self._log.insert([{"_id": event.event_id, "call_id": None, "type": event.type,
                                                  "at": event.at, "received_at": doc["received_at"]}])
            if dup_logged:
                await self._db[OUTBOX].delete_one({"_id": event.event_id})
        new = not (dup_pending or dup_logged)
        if new:
            await self._on_accepted([event.event_id], wait)
        return new
