"""A small "hot" collection in front of a large archive.

FerretDB 1.x on SQLite finds, updates and deletes by scanning the whole table (only inserts use the unique `_id`
index), so a collection that is updated must stay small. Documents still changing (calls in progress, the newest call
list pages) live in the hot collection; settled ones go to the archive (calls when they end; list pages in batches,
one insert and one delete per batch). Reads look in the hot collection first. A document changed after it was
archived is written to the hot collection again, shadows its archived copy, and replaces it at the next move.
"""

from __future__ import annotations

from typing import Any

from backend.db.collections import Db
from backend.db.writes import delete_ids, insert_many_ignoring_duplicates


class Tiered:
    def __init__(self, db: Db, hot: str, archive: str) -> None:
        self._db = db
        self.hot = hot
        self.archive = archive

    async def find_one(self, doc_id: str, archive: bool = True) -> dict[str, Any] | None:
        doc = await self._db[self.hot].find_one({"_id": doc_id})
        if doc is None and archive:
            doc = await self._db[self.archive].find_one({"_id": doc_id})
        return doc

    async def move_to_archive(self, docs: list[dict[str, Any]]) -> int:
        """Archives `docs` (as read from the hot collection). Callers serialise this with every writer of the hot
        collection, so nothing is written between the copy and the delete."""
        if not docs:
            return 0
        existing = await insert_many_ignoring_duplicates(self._db, self.archive, docs)
        for index in existing:  # changed after an earlier archiving: the hot copy is newer
            await self._db[self.archive].replace_one({"_id": docs[index]["_id"]}, docs[index], upsert=True)
        await delete_ids(self._db, self.hot, [d["_id"] for d in docs])
        return len(docs)
