"""A campaign call whose voice server died (backend/services/call_leases.py): its attempt is finalised as `lost` and
its slots are freed now, rather than when the attempt's lifetime runs out. Usually the carrier's final callback gets
there first (the carrier ends a call whose media stream dropped); then this changes nothing."""

from __future__ import annotations

from typing import Any

from backend.campaigns.attempts import AttemptFinalizer, AttemptResult
from backend.campaigns.collections import ATTEMPTS, LEASES
from backend.db.collections import Db


class LostCallRelease:
    def __init__(self, db: Db, finalizer: AttemptFinalizer) -> None:
        self._db = db
        self._finalizer = finalizer

    async def __call__(self, call: dict[str, Any]) -> None:
        contact_id = call.get("contact_id")
        if not contact_id:
            return
        lease = await self._db[LEASES].find_one({"_id": contact_id}, {"attempt_id": 1})
        if lease is None:
            return  # already final
        attempt = await self._db[ATTEMPTS].find_one({"_id": lease.get("attempt_id")}, {"call_id": 1})
        if attempt is None or attempt.get("call_id") != call["_id"]:
            return  # the contact has moved on to another attempt
        await self._finalizer.finalize(attempt["_id"], AttemptResult(outcome="lost", detail="voice_server_lost"))
