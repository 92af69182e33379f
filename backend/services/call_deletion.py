"""Deleting on request: one call (`DELETE /api/v1/calls/{id}`) or everything about one phone number (a data-subject
request). Both queue erasures for the leader (services/erasure.py) and wait, bounded, until they are applied; the
tombstone is written first, so every replica answers 404 for the call at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.campaigns.collections import ATTEMPTS, CONTACTS
from backend.db.collections import CALLS, CALLS_ARCHIVE, OUTBOX, Db
from backend.db.tiered import Tiered
from backend.db.writes import insert_many_ignoring_duplicates
from backend.errors import conflict, not_found
from backend.models.retention import ErasureReason, ErasureScope, ForgetNumberOut
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from backend.services.erasure import erasure_item, tombstone

Accepted = Callable[[list[str], bool], Awaitable[None]]


class ErasureQueue:
    """Puts erasures in the outbox; `on_accepted` wakes the processor (and with `wait`, waits for it)."""

    def __init__(self, db: Db, on_accepted: Accepted) -> None:
        self._db = db
        self._on_accepted = on_accepted

    async def queue(self, org_id: str, call_ids: list[str], scope: ErasureScope, reason: ErasureReason,
                    wait: bool) -> int:
        items = [erasure_item(call_id, org_id, scope, reason) for call_id in call_ids]
        if not items:
            return 0
        await insert_many_ignoring_duplicates(self._db, OUTBOX, items)
        await self._on_accepted([i["_id"] for i in items], wait)
        return len(items)


class CallDeletionService:
    def __init__(self, db: Db, queue: ErasureQueue, audit: AuditLog) -> None:
        self._db = db
        self._queue = queue
        self._audit = audit
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    async def delete_call(self, principal: Principal, call_id: str) -> None:
        doc = await self._calls.find_one(call_id)
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Call")
        if doc.get("ended_at") is None:
            raise conflict("The call has not ended; delete it once it has", "call_live")
        await self._erase(principal.org_id, [call_id], "api")
        await self._audit.record(principal.org_id, principal, "call.deleted", "call", call_id)

    async def forget_number(self, principal: Principal, number: str) -> ForgetNumberOut:
        """Every call to or from `number` and every campaign contact row with it. The audit entry keeps counts only:
        the number itself would be the personal data being erased."""
        query: dict[str, Any] = {"org_id": principal.org_id, "$or": [{"from_number": number}, {"to_number": number}]}
        live = [d["_id"] async for d in self._db[CALLS].find({**query, "ended_at": None}, {"_id": 1})]
        if live:
            raise conflict("A call with this number is in progress; try again once it has ended", "call_live")
        call_ids = {d["_id"] for collection in (CALLS, CALLS_ARCHIVE)
                    async for d in self._db[collection].find(query, {"_id": 1})}
        await self._erase(principal.org_id, sorted(call_ids), "forget_number")
        contact_ids = [d["_id"] async for d in self._db[CONTACTS].find(
            {"org_id": principal.org_id, "phone": number}, {"_id": 1})]
        if contact_ids:
            await self._db[ATTEMPTS].delete_many({"contact_id": {"$in": contact_ids}})
            await self._db[CONTACTS].delete_many({"_id": {"$in": contact_ids}})
        result = ForgetNumberOut(calls=len(call_ids), contacts=len(contact_ids))
        await self._audit.record(principal.org_id, principal, "data_subject.forgotten", "phone_number", None,
                                 result.model_dump())
        return result

    async def _erase(self, org_id: str, call_ids: list[str], reason: ErasureReason) -> None:
        for call_id in call_ids:
            await tombstone(self._db, call_id, org_id)
        await self._queue.queue(org_id, call_ids, "call", reason, wait=True)
