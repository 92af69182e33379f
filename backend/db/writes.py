"""Write helpers."""

from __future__ import annotations

from typing import Any

from pymongo import DeleteOne
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


async def delete_ids(db: Db, collection: str, ids: list[str]) -> None:
    """Deletes the documents with these `_id`s, one delete statement per id in a single command.

    Why not `{"_id": {"$in": ids}}`: FerretDB 1.24 pushes no `$in` down to its database, so that delete reads the
    whole collection into FerretDB first (the outbox applier's delete of ended calls was the costliest statement of
    the dialer benchmark: 161 ms each on 1000 calls); an `_id` equality is served by an index (voicectl/postgres.py).
    One round trip either way, but a statement per id: for a batch that is a large part of its collection (the
    outbox's applied events under a backlog) the one `$in` read is cheaper."""
    if ids:
        await db[collection].bulk_write([DeleteOne({"_id": i}) for i in ids], ordered=False)
