"""Group commit for running totals: concurrent `$inc`s of the same document share one update (group_commit.py).

The outbox applier ends up to 8 calls at once, and each ended call adds its cost to its organisation's month
(billing). One `update_one` per call is one FerretDB round trip each and, on SQLite, one scan of the collection while
holding its only writer; the calls of one organisation's month add up to one update instead.
"""

from __future__ import annotations

import asyncio

from backend.db.collections import Db
from backend.db.group_commit import GroupCommit

Increment = tuple[str, dict[str, float]]  # document id, amounts by field


class GroupIncrement(GroupCommit[Increment, None]):
    def __init__(self, db: Db, collection: str) -> None:
        super().__init__()
        self._db = db
        self._collection = collection

    async def inc(self, doc_id: str, amounts: dict[str, float]) -> None:
        """Adds `amounts` to the fields of document `doc_id` (created if missing); returns once it is stored."""
        await self._submit((doc_id, amounts))

    async def _commit(self, group: list[tuple[Increment, asyncio.Future[None]]]) -> None:
        totals: dict[str, dict[str, float]] = {}
        for (doc_id, amounts), _ in group:
            fields = totals.setdefault(doc_id, {})
            for name, amount in amounts.items():
                fields[name] = fields.get(name, 0.0) + amount
        results = await asyncio.gather(
            *(self._db[self._collection].update_one({"_id": doc_id}, {"$inc": fields}, upsert=True)
              for doc_id, fields in totals.items()), return_exceptions=True)
        failed = {doc_id: r for doc_id, r in zip(totals, results, strict=True) if isinstance(r, BaseException)}
        for (doc_id, _), future in group:
            if future.done():
                continue
            if doc_id in failed:  # every caller of that document gets the error (and its batch is re-applied)
                future.set_exception(failed[doc_id])
            else:
                future.set_result(None)
