"""Group commit for a hot collection: concurrent inserts share one insert_many (group_commit.py).

On FerretDB/SQLite every write command is its own transaction with an fsync of the write-ahead log (a few ms on
a virtual disk), and there is a single writer, so one insert per request caps the rate at a few hundred per second.
While one insert is in flight, the inserts that arrive wait and then go to the database together.
"""

from __future__ import annotations

import asyncio
from typing import Any

from backend.db.collections import Db
from backend.db.group_commit import GroupCommit
from backend.db.writes import insert_many_ignoring_duplicates


class GroupInserter(GroupCommit[list[dict[str, Any]], set[int]]):
    def __init__(self, db: Db, collection: str, max_docs: int = 1000) -> None:
        super().__init__()
        self._db = db
        self._collection = collection
        self._max_docs = max_docs

    async def insert(self, docs: list[dict[str, Any]]) -> set[int]:
        """Inserts `docs`; returns the indexes (into `docs`) whose `_id` already existed."""
        if not docs:
            return set()
        return await self._submit(docs)

    def _take(self) -> list[tuple[list[dict[str, Any]], asyncio.Future[set[int]]]]:
        group: list[tuple[list[dict[str, Any]], asyncio.Future[set[int]]]] = []
        count = 0
        while self._waiting and (not group or count + len(self._waiting[0][0]) <= self._max_docs):
            docs, future = self._waiting.pop(0)
            group.append((docs, future))
            count += len(docs)
        return group

    async def _commit(self, group: list[tuple[list[dict[str, Any]], asyncio.Future[set[int]]]]) -> None:
        combined = [doc for docs, _ in group for doc in docs]
        try:
            duplicates = await insert_many_ignoring_duplicates(self._db, self._collection, combined)
        except Exception as exc:  # every caller in the group gets the error (and retries)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for docs, future in group:
            mine = {i - offset for i in duplicates if offset <= i < offset + len(docs)}
            if not future.done():
                future.set_result(mine)
            offset += len(docs)
