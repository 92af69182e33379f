"""An organisation's knowledge version: a counter bumped after every change to its vector table.

Why: voice servers search local copies of the tables (core/knowledge/replicas.py). A call's resolved agent carries
the version current when the call was set up, and a copy older than that is not used, so no voice server answers
from content a re-upload or a delete has replaced. Bumped after the table write it covers (a copy made in between is
at least as new as the version it is filed under). `$inc` is atomic on MongoDB; FerretDB on SQLite updates by
read-modify-write, where two bumps racing can count as one (a later change still moves the version on).
"""

from __future__ import annotations

from backend.db.collections import KNOWLEDGE_VERSIONS, Db


class KnowledgeVersions:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def bump(self, org_id: str) -> None:
        await self._db[KNOWLEDGE_VERSIONS].update_one({"_id": org_id}, {"$inc": {"version": 1}}, upsert=True)

    async def current(self, org_id: str) -> int:
        doc = await self._db[KNOWLEDGE_VERSIONS].find_one({"_id": org_id})
        return int(doc["version"]) if doc is not None else 0
