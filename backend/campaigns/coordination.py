"""Exclusive claims built only from duplicate-key inserts and deletes by `_id` (exact on MongoDB and FerretDB).

- Slots: a live call holds one slot per scope (its campaign, its organisation; a call placed through the API only
  its organisation's). Slot n of a scope is the document
  `"{scope}:{n}"` with n < cap, so at most `cap` can exist however many dialers race for them.
- Rate tokens: time is cut into ticks of 1/cps seconds and each tick's token can be inserted once, so all dialers
  together place at most one call per tick: a steady `cps` calls per second, no bursts.
- Marks: one-time facts about an attempt (its fate, its final outcome...). The first insert wins.
- Leases: `_id` = contact id; the holder is the only writer of that contact.
Liveness (heartbeats, lease expiry, tick timing) uses the wall clock, not the injectable business clock: it is about
real processes and real carrier requests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.campaigns.collections import DIALERS, LEASES, LOCKS, MARKS, RATE_TOKENS, SLOTS, mark_id
from backend.db.collections import Db


def wall_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def campaign_scope(campaign_id: str) -> str:
    return f"c:{campaign_id}"


def org_scope(org_id: str) -> str:
    return f"o:{org_id}"


def api_attempt_id(call_id: str) -> str:
    """What holds the organisation slot of a call placed through POST /api/v1/calls (it has no attempt)."""
    return f"api:{call_id}"


class Coordination:
    def __init__(self, db: Db) -> None:
        self._db = db
        self._last_tick: dict[str, int] = {}
        # Slot numbers this process is trying right now: concurrent dials here never race each other for one.
        self._trying: set[str] = set()

    # -- slots -------------------------------------------------------------------------------------------------
    async def slots_taken(self, scopes: Iterable[str]) -> dict[str, set[int]]:
        """The slot numbers in use per scope, in one read (the slots collection is small: one document per live
        call and scope)."""
        wanted = list(scopes)
        taken: dict[str, set[int]] = {scope: set() for scope in wanted}
        async for doc in self._db[SLOTS].find({"scope": {"$in": wanted}}, {"scope": 1, "n": 1}):
            taken.setdefault(doc["scope"], set()).add(int(doc["n"]))
        return taken

    async def slots_in_use(self, scopes: Iterable[str]) -> dict[str, int]:
        return {scope: len(numbers) for scope, numbers in (await self.slots_taken(scopes)).items()}

    async def acquire_slot(self, scope: str, cap: int, holder: dict[str, Any], taken: set[int] | None = None
                           ) -> str | None:
        """Inserts the first free slot below `cap`; `taken` (from `slots_taken`) saves the read when the caller
        has just made it. A stale `taken` costs nothing but a duplicate key: the insert decides."""
        if taken is None:
            taken = (await self.slots_taken([scope]))[scope]
        for n in range(cap):
            slot_id = f"{scope}:{n}"
            if n in taken or slot_id in self._trying:
                continue
            self._trying.add(slot_id)
            try:
                await self._db[SLOTS].insert_one({"_id": slot_id, "scope": scope, "n": n, "acquired_at": wall_now(),
                                                  **holder})
            except DuplicateKeyError:
                continue
            finally:
                self._trying.discard(slot_id)
            return slot_id
        return None

    async def release_slots(self, slot_ids: Iterable[str], attempt: str | None = None) -> int:
        """Deletes the slots (concurrently); with `attempt`, only while that attempt still holds them (a slot
        released already may have been taken again by another call)."""
        async def release(slot_id: str) -> int:
            query: dict[str, Any] = {"_id": slot_id} if attempt is None else {"_id": slot_id, "attempt_id": attempt}
            return (await self._db[SLOTS].delete_one(query)).deleted_count

        return sum(await asyncio.gather(*(release(slot_id) for slot_id in slot_ids)))

    async def release_attempt_slots(self, attempt: str) -> int:
        """Every slot the attempt holds (the slots collection is small: one document per live call and scope)."""
        slots = [doc["_id"] async for doc in self._db[SLOTS].find({"attempt_id": attempt}, {"_id": 1})]
        return await self.release_slots(slots, attempt)

    # -- calls-per-second tokens ----------------------------------------------------------------------------------
    async def acquire_rate_token(self, campaign_id: str, cps: float, horizon_s: float = 2.0) -> float | None:
        """Claims the earliest free tick that starts now or later, up to `horizon_s` ahead; returns its start
        (epoch seconds). The caller waits until then before dialling. A tick that has already begun is never
        claimed: a dial placed late in its tick would sit right before the next one's and burst past the cap."""
        now = time.time()
        current = math.ceil(now * cps)
        last = current + max(1, math.ceil(horizon_s * cps))
        while True:
            # Reserve the tick locally before the insert, so this process's dials never try the same one.
            tick = max(current, self._last_tick.get(campaign_id, current - 1) + 1)
            if tick > last:
                return None
            self._last_tick[campaign_id] = tick
            try:
                await self._db[RATE_TOKENS].insert_one({"_id": f"{campaign_id}:{tick}", "campaign_id": campaign_id,
                                                        "at": wall_now()})
            except DuplicateKeyError:
                continue  # another dialer's: try the next tick
            return tick / cps

    async def purge_rate_tokens(self, older_than_s: float = 30.0) -> None:
        cutoff = datetime.fromtimestamp(time.time() - older_than_s, UTC)
        await self._db[RATE_TOKENS].delete_many({"at": {"$lt": cutoff}})

    # -- marks ---------------------------------------------------------------------------------------------------
    async def put_mark(self, attempt: str, kind: str, data: dict[str, Any]) -> bool:
        try:
            await self._db[MARKS].insert_one({"_id": mark_id(attempt, kind), "attempt_id": attempt, "kind": kind,
                                              "at": wall_now(), **data})
        except DuplicateKeyError:
            return False
        return True

    async def get_mark(self, attempt: str, kind: str) -> dict[str, Any] | None:
        return await self._db[MARKS].find_one({"_id": mark_id(attempt, kind)})

    # -- leases --------------------------------------------------------------------------------------------------
    async def take_lease(self, contact: str, doc: dict[str, Any]) -> bool:
        try:
            await self._db[LEASES].insert_one({"_id": contact, "claimed_at": wall_now(), **doc})
        except DuplicateKeyError:
            return False
        return True

    async def drop_lease(self, contact: str, attempt: str | None = None) -> bool:
        if attempt is not None:
            lease = await self._db[LEASES].find_one({"_id": contact}, {"attempt_id": 1})
            if lease is None or lease.get("attempt_id") != attempt:
                return False
        res = await self._db[LEASES].delete_one({"_id": contact})
        return res.deleted_count == 1

    # -- short locks ---------------------------------------------------------------------------------------------
    async def lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """An exclusive section; a lock older than its ttl is broken (its holder is presumed gone)."""
        for _ in range(2):
            try:
                await self._db[LOCKS].insert_one({"_id": name, "owner": owner, "at": wall_now(),
                                                  "expires": time.time() + ttl_s})
                return True
            except DuplicateKeyError:
                held = await self._db[LOCKS].find_one({"_id": name})
                if held is None or held.get("expires", 0) >= time.time():
                    if held is None:
                        continue
                    return False
                # Break the stale lock by deleting exactly that document; only one breaker can delete it.
                await self._db[LOCKS].delete_one({"_id": name, "owner": held.get("owner"), "at": held.get("at")})
        return False

    async def unlock(self, name: str, owner: str) -> None:
        held = await self._db[LOCKS].find_one({"_id": name}, {"owner": 1})
        if held is not None and held.get("owner") == owner:
            await self._db[LOCKS].delete_one({"_id": name})

    # -- dialer heartbeats ---------------------------------------------------------------------------------------
    async def beat(self, dialer: str, info: dict[str, Any]) -> None:
        await self._db[DIALERS].update_one({"_id": dialer}, {"$set": {"beat": time.time(), **info}}, upsert=True)

    async def retire(self, dialer: str) -> None:
        await self._db[DIALERS].delete_one({"_id": dialer})

    async def live_dialers(self, dead_after_s: float) -> set[str]:
        cutoff = time.time() - dead_after_s
        return {doc["_id"] async for doc in self._db[DIALERS].find({}, {"beat": 1}) if doc.get("beat", 0) >= cutoff}
