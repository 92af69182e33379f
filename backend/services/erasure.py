"""Deleting a call's data, applied by the elected leader inside the outbox processor (call_projection.py).

Erasures travel through the outbox like call events (`kind: "erase"`, `_id = erase:{scope}:{call id}`), so they are
serialised with everything else that writes calls and the call list, survive a crash (the item stays until applied)
and are idempotent (a second request or a re-run finds nothing left and records nothing). Scopes:

- `call`: the call, its transcript and turns, its recording objects, dead letters and queued webhook payloads that
  quote it, and its row in the call list; a tombstone makes later events for it (a recording uploaded late from a
  voice server's spool) be dropped and their objects deleted.
- `recording`: the recording objects; the call stays, marked `recording_purged_at`.
- `transcript`: transcript, turns and collected variables; the call stays, marked `transcript_purged_at`.

Each erasure that found something leaves a record in `erasures` with counts and the call id only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.db.collections import (
    CALL_RECORDINGS,
    CALL_TRANSCRIPTS,
    CALL_TURNS,
    CALLS,
    CALLS_ARCHIVE,
    DEAD_LETTERS,
    ERASED_CALLS,
    ERASURES,
    WEBHOOK_QUEUE,
    WEBHOOKS,
    Db,
    outbox_lane,
)
from backend.db.ids import utcnow
from backend.db.tiered import Tiered
from backend.db.writes import insert_many_ignoring_duplicates
from backend.models.retention import ErasureReason, ErasureScope
from backend.services.call_log import CallLog
from backend.services.transcripts import transcript_doc
from core.storage import ObjectStore

log = logging.getLogger(__name__)

RECORDING_EVENT = "call.recording"


def erasure_item(call_id: str, org_id: str, scope: ErasureScope, reason: ErasureReason) -> dict[str, Any]:
    """The outbox entry that asks the leader to erase `scope` of a call."""
    now = utcnow()
    return {"_id": f"erase:{scope}:{call_id}", "kind": "erase", "call_id": call_id, "org_id": org_id,
            "scope": scope, "reason": reason, "type": "erase", "at": now, "received_at": now,
            "deferrals": 0, "lane": outbox_lane(call_id)}


async def tombstone(db: Db, call_id: str, org_id: str) -> None:
    try:
        await db[ERASED_CALLS].insert_one({"_id": call_id, "org_id": org_id, "at": utcnow()})
    except DuplicateKeyError:
        pass


async def is_erased(db: Db, call_id: str) -> bool:
    return await db[ERASED_CALLS].find_one({"_id": call_id}, {"_id": 1}) is not None


class Eraser:
    def __init__(self, db: Db, store: ObjectStore, call_log: CallLog) -> None:
        self._db = db
        self._store = store
        self._call_log = call_log
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    async def screen(self, by_call: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Removes the pending events of erased calls from `by_call` (deleting the objects of late recordings);
        returns their outbox ids, to be dropped."""
        if not by_call:
            return []
        erased = [d["_id"] async for d in self._db[ERASED_CALLS].find({"_id": {"$in": list(by_call)}}, {"_id": 1})]
        dropped: list[str] = []
        for call_id in erased:
            for item in by_call.pop(call_id, []):
                if item.get("type") == RECORDING_EVENT and item.get("event_json"):
                    await self._store.delete(str(json.loads(item["event_json"])["key"]))
                dropped.append(item["_id"])
        return dropped

    async def erase_calls(self, items: list[dict[str, Any]]) -> None:
        """Applies many `call`-scope erasures together: one command per collection for the whole batch (each a scan
        on FerretDB, so batching is what makes retention sweeps fast) and one rewrite per call-list page."""
        calls = {d["_id"]: d for c in (CALLS, CALLS_ARCHIVE) async for d in self._db[c].find(
            {"_id": {"$in": [i["call_id"] for i in items]}}, {"org_id": 1, "recording": 1})}
        late = {d["_id"]: d async for d in self._db[CALL_RECORDINGS].find(
            {"_id": {"$in": [i["call_id"] for i in items]}}, {"key": 1, "org_id": 1})}
        mine = [i for i in items if calls.get(i["call_id"], {"org_id": i["org_id"]})["org_id"] == i["org_id"]]
        ids = [i["call_id"] for i in mine]
        if not ids:
            return
        objects: dict[str, int] = {}
        for item in mine:
            call_id = item["call_id"]
            await tombstone(self._db, call_id, item["org_id"])
            objects[call_id] = await self._delete_recordings(
                item["org_id"], call_id, [(calls.get(call_id) or {}).get("recording"), late.get(call_id)])
        for collection in (CALLS, CALLS_ARCHIVE, CALL_TRANSCRIPTS, CALL_RECORDINGS):
            await self._db[collection].delete_many({"_id": {"$in": ids}})
        for collection in (CALL_TURNS, DEAD_LETTERS):
            await self._db[collection].delete_many({"call_id": {"$in": ids}})
        await self._db[WEBHOOK_QUEUE].delete_many({"payload.data.call_id": {"$in": ids}})
        await self._db[WEBHOOKS].delete_many({"call_id": {"$in": ids}})  # a call's own webhook_url
        by_org: dict[str, list[str]] = {}
        for item in mine:
            by_org.setdefault(item["org_id"], []).append(item["call_id"])
        for org_id, org_ids in by_org.items():
            await self._call_log.remove(org_id, org_ids)
        records = [{"_id": i["_id"], "org_id": i["org_id"], "call_id": i["call_id"], "scope": "call",
                    "reason": i.get("reason", "api"), "objects_deleted": objects[i["call_id"]], "at": utcnow()}
                   for i in mine if i["call_id"] in calls or objects[i["call_id"]]]
        for index in await insert_many_ignoring_duplicates(self._db, ERASURES, records):
            await self._db[ERASURES].replace_one({"_id": records[index]["_id"]}, records[index], upsert=True)

    async def apply(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Erases one item's scope. Returns the call when it remains and its list row must be re-projected."""
        call_id, org_id, scope = item["call_id"], item["org_id"], item["scope"]
        if scope == "call":
            await self.erase_calls([item])
            return None
        call = await self._calls.find_one(call_id)
        if call is not None and call["org_id"] != org_id:
            log.warning("erasure %s names another organisation than its call; ignored", item["_id"])
            return None
        late = await self._db[CALL_RECORDINGS].find_one({"_id": call_id})
        objects = 0
        if scope == "recording":
            objects = await self._delete_recordings(org_id, call_id, [(call or {}).get("recording"), late])
        found = call is not None or objects > 0
        remaining: dict[str, Any] | None = None
        if call is not None and scope == "recording":
            await self._db[CALL_RECORDINGS].delete_one({"_id": call_id})
            call.update(recording=None, recording_purged_at=utcnow())
            remaining = await self._save(call)
        elif call is not None and scope == "transcript":
            await self._db[CALL_TURNS].delete_many({"call_id": call_id})
            await self._db[CALL_TRANSCRIPTS].replace_one(
                {"_id": call_id}, transcript_doc({"_id": call_id, "org_id": org_id, "turns": []}), upsert=True)
            call.update(variables={}, transcript_purged_at=utcnow())
            remaining = await self._save(call)
        if found:
            await self._db[ERASURES].replace_one({"_id": item["_id"]}, {
                "_id": item["_id"], "org_id": org_id, "call_id": call_id, "scope": scope,
                "reason": item.get("reason", "api"), "objects_deleted": objects, "at": utcnow()}, upsert=True)
        return remaining

    async def _delete_recordings(self, org_id: str, call_id: str, recordings: list[dict[str, Any] | None]) -> int:
        deleted = 0
        for recording in recordings:
            key = (recording or {}).get("key")
            if key and await self._store.stat(str(key)) is not None:
                await self._store.delete(str(key))
                deleted += 1
        return deleted + await self._store.delete_prefix(f"{org_id}/{call_id}/")

    async def _save(self, call: dict[str, Any]) -> dict[str, Any]:
        hot = await self._db[CALLS].find_one({"_id": call["_id"]}, {"_id": 1})
        await self._db[CALLS if hot else CALLS_ARCHIVE].replace_one({"_id": call["_id"]}, call, upsert=True)
        return call


