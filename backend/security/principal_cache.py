"""A short-lived cache of resolved principals, so a burst of requests does not re-read the session and membership
for every call.

Changes made through this process (logout, reuse detection, role change, removal, key revocation) drop the
affected entries at once; other replicas see them within `ttl_s` (AUTH_CACHE_TTL_S, default 1 s; 0 disables).
"""

from __future__ import annotations

import time

from backend.security.permissions import Principal


class PrincipalCache:
    def __init__(self, ttl_s: float, max_entries: int = 20000) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return hit[1]

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl_s, principal)

    def forget(self, *, user_id: str | None = None, session_id: str | None = None, api_key_id: str | None = None,
               org_id: str | None = None) -> None:
        def affected(p: Principal) -> bool:
            if org_id is not None and p.org_id != org_id:
                return False
            return ((user_id is not None and p.user_id == user_id)
                    or (session_id is not None and p.session_id == session_id)
                    or (api_key_id is not None and p.api_key_id == api_key_id))

        for key in [k for k, (_, p) in self._entries.items() if affected(p)]:
            self._entries.pop(key, None)
