"""Write helpers."""

from __future__ import annotations

from typing import Any

from pymongo.errors import BulkWriteError

from backend.db.collections import Db


async def insert_many_ignoring_duplicates(db: Db, collection: str, docs: list[dict[str, Any]]) -> set[int]:
    """Inserts every document it can; returns the indexes of those whose `_id` (or unique key) already existed."""
    if not docs:
        return set()
    try:
        await db[collection].insert_many(docs, ordered=False)
        return set()
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {int(e["index"]) for e in errors}
