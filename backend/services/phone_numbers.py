"""Phone numbers of an organisation. A number belongs to at most one organisation (unique index)."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.db.collections import AGENTS, PHONE_NUMBERS, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.models.phone_numbers import PhoneNumberCreate, PhoneNumberOut, PhoneNumberUpdate
from backend.security.permissions import Principal
from backend.services.audit import AuditLog


class PhoneNumberService:
    def __init__(self, db: Db, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def _owned(self, principal: Principal, number_id: str) -> dict[str, Any]:
        doc = await self._db[PHONE_NUMBERS].find_one({"_id": number_id})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Phone number")
        return doc

    async def _check_agent(self, principal: Principal, agent_id: str | None) -> None:
        if agent_id is None:
            return
        agent = await self._db[AGENTS].find_one({"_id": agent_id}, {"org_id": 1, "deleted_at": 1})
        if agent is None or agent["org_id"] != principal.org_id or agent.get("deleted_at") is not None:
            raise ApiError(422, "validation_error", "body.agent_id: no such agent in this organisation",
                           [ErrorDetail(path="body.agent_id", message="no such agent in this organisation",
                                        type="not_found")])

    async def list_numbers(self, principal: Principal) -> list[PhoneNumberOut]:
        cursor = self._db[PHONE_NUMBERS].find({"org_id": principal.org_id}).sort("created_at", -1)
        return [_out(doc) async for doc in cursor]

    async def get(self, principal: Principal, number_id: str) -> PhoneNumberOut:
        return _out(await self._owned(principal, number_id))

    async def create(self, principal: Principal, body: PhoneNumberCreate) -> PhoneNumberOut:
        await self._check_agent(principal, body.agent_id)
        now = utcnow()
        doc: dict[str, Any] = {"_id": new_id(), "org_id": principal.org_id, "number": body.number, "carrier": body.carrier,
               "agent_id": body.agent_id, "label": body.label, "created_at": now, "updated_at": now}
        try:
            await self._db[PHONE_NUMBERS].insert_one(doc)
        except DuplicateKeyError:
            raise conflict("This number is already registered", code="number_taken") from None
        await self._audit.record(principal.org_id, principal, "phone_number.created", "phone_number", doc["_id"],
                                 {"number": body.number})
        return _out(doc)

    async def update(self, principal: Principal, number_id: str, body: PhoneNumberUpdate) -> PhoneNumberOut:
        doc = await self._owned(principal, number_id)
        changes: dict[str, Any] = {}
        # Only fields sent are changed; an explicit null unlinks the agent or clears the label.
        if "agent_id" in body.model_fields_set:
            await self._check_agent(principal, body.agent_id)
            changes["agent_id"] = body.agent_id
        if "label" in body.model_fields_set:
            changes["label"] = body.label
        if changes:
            changes["updated_at"] = utcnow()
            await self._db[PHONE_NUMBERS].update_one({"_id": number_id}, {"$set": changes})
            await self._audit.record(principal.org_id, principal, "phone_number.updated", "phone_number", number_id,
                                     {k: v for k, v in changes.items() if k != "updated_at"})
            doc.update(changes)
        return _out(doc)

    async def delete(self, principal: Principal, number_id: str) -> None:
        await self._owned(principal, number_id)
        await self._db[PHONE_NUMBERS].delete_one({"_id": number_id})
        await self._audit.record(principal.org_id, principal, "phone_number.deleted", "phone_number", number_id)

    async def by_number(self, e164: str) -> dict[str, Any] | None:
        return await self._db[PHONE_NUMBERS].find_one({"number": e164})


def _out(doc: dict[str, Any]) -> PhoneNumberOut:
    return PhoneNumberOut(id=doc["_id"], number=doc["number"], carrier=doc["carrier"], agent_id=doc.get("agent_id"),
                          label=doc.get("label"), created_at=doc["created_at"], updated_at=doc["updated_at"])
