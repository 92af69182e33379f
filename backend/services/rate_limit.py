"""Fixed-window rate limits shared by every replica.

Each hit inserts a document into one of `limit` numbered slots for the window; a unique `_id` makes each slot
single-use, so the count is exact without read-modify-write (which FerretDB does not make atomic).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from backend.db.collections import RATE_LIMITS, Db


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, db: Db) -> None:
        self._db = db
        self._next_slot: dict[str, int] = {}

    @staticmethod
    def _prefix(bucket: str, key: str, window: int) -> str:
        return f"{bucket}:{hashlib.sha256(key.lower().encode()).hexdigest()[:24]}:{window}"

    def _retry_after(self, window: int, window_s: int, now: float) -> int:
        return max(1, math.ceil((window + 1) * window_s - now))

    async def hit(self, bucket: str, key: str, limit: int, window_s: int) -> RateDecision:
        """Counts one event; refused once `limit` events happened in the current window."""
        now = time.time()
        window = int(now // window_s)
        prefix = self._prefix(bucket, key, window)
        expires = datetime.fromtimestamp((window + 1) * window_s, UTC)
        slot = self._next_slot.get(prefix, 0)
        while slot < limit:
            try:
                await self._db[RATE_LIMITS].insert_one({"_id": f"{prefix}:{slot}", "expires_at": expires})
                self._remember(prefix, slot + 1)
                return RateDecision(True)
            except DuplicateKeyError:
                slot += 1
        self._remember(prefix, limit)
        return RateDecision(False, self._retry_after(window, window_s, now))

    async def exceeded(self, bucket: str, key: str, limit: int, window_s: int) -> RateDecision:
        """Checks without counting: is the last slot of the window already taken?"""
        now = time.time()
        window = int(now // window_s)
        prefix = self._prefix(bucket, key, window)
        taken = await self._db[RATE_LIMITS].find_one({"_id": f"{prefix}:{limit - 1}"}, {"_id": 1})
        if taken is None:
            return RateDecision(True)
        return RateDecision(False, self._retry_after(window, window_s, now))

    async def record(self, bucket: str, key: str, window_s: int) -> None:
        """Counts one event with no limit (read back with `count`): unique ids, so replicas never collide."""
        now = time.time()
        window = int(now // window_s)
        expires = datetime.fromtimestamp((window + 1) * window_s, UTC)
        await self._db[RATE_LIMITS].insert_one({"_id": f"{self._prefix(bucket, key, window)}:e{uuid.uuid4().hex}",
                                                "expires_at": expires})

    async def count(self, bucket: str, key: str, window_s: int) -> int:
        """Events `record`ed in the current window."""
        prefix = self._prefix(bucket, key, int(time.time() // window_s))
        return int(await self._db[RATE_LIMITS].count_documents({"_id": {"$regex": f"^{re.escape(prefix)}:e"}}))

    def _remember(self, prefix: str, slot: int) -> None:
        if len(self._next_slot) > 10000:
            self._next_slot.clear()
        self._next_slot[prefix] = slot

    async def purge_expired(self) -> int:
        res = await self._db[RATE_LIMITS].delete_many({"expires_at": {"$lt": datetime.now(UTC)}})
        return res.deleted_count
