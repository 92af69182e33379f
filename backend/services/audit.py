"""Audit log of administrative actions (who changed what, when), per organisation."""

from __future__ import annotations

import logging
from typing import Any

from backend.db.collections import AUDIT_LOG, Db
from backend.db.ids import new_id, utcnow
from backend.models.org import AuditEntryOut
from backend.security.permissions import Principal

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def record(
        self,
        org_id: str,
        actor: Principal | str,
        action: str,
        target_type: str,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        doc = {
            "_id": new_id(), "org_id": org_id, "at": utcnow(),
            "actor": actor.actor if isinstance(actor, Principal) else actor,
            "action": action, "target_type": target_type, "target_id": target_id, "detail": detail or {},
        }
        await self._db[AUDIT_LOG].insert_one(doc)
        log.info("audit org=%s actor=%s action=%s target=%s:%s", org_id, doc["actor"], action, target_type, target_id)

    async def recent(self, principal: Principal, limit: int = 100) -> list[AuditEntryOut]:
        cursor = self._db[AUDIT_LOG].find({"org_id": principal.org_id}).sort("at", -1).limit(limit)
        return [AuditEntryOut(id=d["_id"], **{k: v for k, v in d.items() if k != "_id"}) async for d in cursor]
