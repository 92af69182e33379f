"""Leader election among backend replicas, built only on unique-key inserts (atomic on MongoDB and FerretDB).

Time is cut into windows; whoever first inserts the document for a window leads during it. The leader claims the
next window half-way through the current one, so leadership stays put while it is alive; if it dies, another replica
wins the following window. Background work that needs a single writer (applying call events to shared read models,
dispatching webhooks) runs only on the leader.
"""

from __future__ import annotations

import logging
import time

from pymongo.errors import DuplicateKeyError

from backend.db.collections import LEASES, Db
from backend.db.ids import new_id, utcnow

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, db: Db, name: str = "workers", window_s: float = 10.0) -> None:
        self._db = db
        self.name = name
        self.window_s = window_s
        self.instance_id = new_id()
        self._decided: dict[int, bool] = {}
        # Bumped each time this replica becomes leader; caches of leader-only data are valid within one term.
        self.term = 0
        self._was_leading = False

    def _window(self, now: float) -> int:
        return int(now // self.window_s)

    async def _claim(self, window: int) -> bool:
        if window in self._decided:
            return self._decided[window]
        key = f"{self.name}:{window}"
        try:
            await self._db[LEASES].insert_one({"_id": key, "holder": self.instance_id, "created_at": utcnow()})
            won = True
            # Keep the collection tiny: drop the lease of a few windows ago.
            await self._db[LEASES].delete_one({"_id": f"{self.name}:{window - 3}"})
        except DuplicateKeyError:
            doc = await self._db[LEASES].find_one({"_id": key})
            won = bool(doc and doc.get("holder") == self.instance_id)
        self._decided[window] = won
        if len(self._decided) > 16:
            for old in sorted(self._decided)[:-8]:
                del self._decided[old]
        return won

    async def is_leader(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        window = self._window(now)
        leading = await self._claim(window)
        if leading and (now / self.window_s) - window > 0.5:
            await self._claim(window + 1)  # renew early so a live leader keeps its place
        if leading and not self._was_leading:
            self.term += 1
        self._was_leading = leading
        return leading

    async def current_term(self) -> int | None:
        """The term while this replica leads, else None."""
        return self.term if await self.is_leader() else None
