"""Per-organisation retention: the settings, and the housekeeping sweep that applies them.

The sweep runs on the elected leader (services/workers.py Housekeeping). Each round finds, per organisation and per
kind of data, a bounded batch of ended calls past their period that still hold that data, and queues one erasure per
call with a deterministic id (services/erasure.py): a round that overlaps the previous one's pending work queues
nothing twice, a crash loses nothing (the outbox keeps what was queued, the next round finds what was not), and a
second backend that becomes leader simply carries on. What was deleted is recorded in `erasures`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.db.collections import CALLS_ARCHIVE, ERASURES, ORGANIZATIONS, Db
from backend.db.ids import utcnow
from backend.errors import not_found
from backend.models.retention import ErasureRecord, ErasureScope, RetentionSettings
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from backend.services.call_deletion import ErasureQueue

SWEEP_BATCH = 500  # calls per organisation and scope per round

# scope -> (setting, the mark a call carries once that scope is gone)
_SCOPES: dict[ErasureScope, tuple[str, str | None]] = {
    "call": ("metadata_days", None),
    "transcript": ("transcripts_days", "transcript_purged_at"),
    "recording": ("recordings_days", "recording_purged_at"),
}


class RetentionService:
    def __init__(self, db: Db, queue: ErasureQueue, audit: AuditLog, batch: int = SWEEP_BATCH) -> None:
        self._db = db
        self._queue = queue
        self._audit = audit
        self._batch = batch

    async def get(self, principal: Principal) -> RetentionSettings:
        doc = await self._db[ORGANIZATIONS].find_one({"_id": principal.org_id}, {"retention": 1})
        if doc is None:
            raise not_found("Organisation")
        return RetentionSettings.model_validate(doc.get("retention") or {})

    async def put(self, principal: Principal, body: RetentionSettings) -> RetentionSettings:
        await self._db[ORGANIZATIONS].update_one({"_id": principal.org_id}, {"$set": {"retention": body.model_dump()}})
        await self._audit.record(principal.org_id, principal, "retention.updated", "organization", principal.org_id,
                                 body.model_dump())
        return body

    async def erasures(self, principal: Principal, limit: int) -> list[ErasureRecord]:
        cursor = self._db[ERASURES].find({"org_id": principal.org_id}).sort("at", -1).limit(limit)
        return [ErasureRecord(id=d["_id"], **{k: v for k, v in d.items() if k not in ("_id", "org_id")})
                async for d in cursor]

    async def sweep(self, now: datetime | None = None) -> int:
        """One round: queues the erasures that are due. Returns how many were queued (duplicates included)."""
        now = now or utcnow()
        queued = 0
        async for org in self._db[ORGANIZATIONS].find({}, {"retention": 1}):
            settings = RetentionSettings.model_validate(org.get("retention") or {})
            for scope, (field, mark) in _SCOPES.items():
                days = getattr(settings, field)
                if days is None:
                    continue
                query: dict[str, Any] = {"org_id": org["_id"], "ended_at": {"$lt": now - timedelta(days=days)}}
                if mark is not None:
                    query[mark] = None
                ids = [d["_id"] async for d in self._db[CALLS_ARCHIVE].find(query, {"_id": 1}).limit(self._batch)]
                queued += await self._queue.queue(org["_id"], ids, scope, "retention", wait=False)
        return queued
