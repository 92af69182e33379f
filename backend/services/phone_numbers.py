"""Phone numbers of an organisation.

Anyone may list a number; it routes calls only once the carrier's API, asked with the organisation's own
credentials, says the organisation's account owns it (telephony/ownership.py). The route is one document per
number (NUMBER_ROUTES), so at most one organisation gets a number's calls. Nothing here tells one organisation that
another has listed or verified a number, except the verified owner itself."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from pymongo.errors import DuplicateKeyError

from backend.db.collections import AGENTS, NUMBER_ROUTES, PHONE_NUMBERS, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.models.phone_numbers import PhoneNumberCreate, PhoneNumberOut, PhoneNumberUpdate
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from backend.services.carriers import CarrierCredentialService
from telephony.ownership import Ownership, carrier_owns


class PhoneNumberService:
    def __init__(self, db: Db, audit: AuditLog, carriers: CarrierCredentialService, http: httpx.AsyncClient) -> None:
        self._db = db
        self._audit = audit
        self._carriers = carriers
        self._http = http

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
               "agent_id": body.agent_id, "label": body.label, "verified_at": None, "created_at": now,
               "updated_at": now}
        try:
            await self._db[PHONE_NUMBERS].insert_one(doc)
        except DuplicateKeyError:
            raise conflict("This number is already in your organisation", code="number_taken") from None
        await self._audit.record(principal.org_id, principal, "phone_number.created", "phone_number", doc["_id"],
                                 {"number": body.number})
        if await self._carriers.decrypted(principal.org_id, body.carrier) is not None:
            with contextlib.suppress(ApiError):  # not verifiable yet: stays listed, routes nothing
                return await self.verify(principal, doc["_id"])
        return _out(doc)

    async def verify(self, principal: Principal, number_id: str) -> PhoneNumberOut:
        """Asks the carrier whether the organisation's account owns the number; if so the number routes its calls."""
        doc = await self._owned(principal, number_id)
        creds = await self._carriers.decrypted(principal.org_id, doc["carrier"])
        if creds is None:
            raise ApiError(422, "carrier_credentials_missing",
                           f"Add your {doc['carrier']} credentials first: ownership is checked with them")
        ownership = await carrier_owns(self._http, creds, doc["number"])
        if ownership is Ownership.CREDENTIALS_REJECTED:
            raise ApiError(422, "carrier_credentials_rejected", f"{doc['carrier']} rejected your credentials")
        if ownership is Ownership.UNREACHABLE:  # a 4xx: nothing is wrong with this server, and nothing changed
            raise ApiError(422, "carrier_unreachable", f"{doc['carrier']} did not answer the ownership check; "
                                                        "try again")
        if ownership is Ownership.NOT_OWNED:
            raise ApiError(422, "number_not_owned",
                           f"Your {doc['carrier']} account does not own {doc['number']}")
        route = {"_id": doc["number"], "org_id": principal.org_id, "number_id": number_id}
        try:
            await self._db[NUMBER_ROUTES].insert_one(route)
        except DuplicateKeyError:
            current = await self._db[NUMBER_ROUTES].find_one({"_id": doc["number"]}) or {}
            if current.get("org_id") != principal.org_id:
                # Only a verified owner of the number gets here: it is safe to say the number is in use.
                raise conflict("This number is verified by another account; contact support",
                               code="number_taken") from None
            await self._db[NUMBER_ROUTES].replace_one({"_id": doc["number"]}, route)
        now = utcnow()
        await self._db[PHONE_NUMBERS].update_one({"_id": number_id}, {"$set": {"verified_at": now, "updated_at": now}})
        await self._audit.record(principal.org_id, principal, "phone_number.verified", "phone_number", number_id,
                                 {"number": doc["number"]})
        return _out({**doc, "verified_at": now, "updated_at": now})

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
        doc = await self._owned(principal, number_id)
        await self._db[NUMBER_ROUTES].delete_one({"_id": doc["number"], "number_id": number_id})
        await self._db[PHONE_NUMBERS].delete_one({"_id": number_id})
        await self._audit.record(principal.org_id, principal, "phone_number.deleted", "phone_number", number_id)

    async def by_number(self, e164: str) -> dict[str, Any] | None:
        """The verified number that gets this number's calls, or None."""
        route = await self._db[NUMBER_ROUTES].find_one({"_id": e164})
        if route is None:
            return None
        return await self._db[PHONE_NUMBERS].find_one({"_id": route["number_id"]})

    async def of_org(self, org_id: str, e164: str) -> dict[str, Any] | None:
        """The organisation's own listing of a number (e.g. a caller id), verified or not."""
        return await self._db[PHONE_NUMBERS].find_one({"org_id": org_id, "number": e164})


def _out(doc: dict[str, Any]) -> PhoneNumberOut:
    return PhoneNumberOut(id=doc["_id"], number=doc["number"], carrier=doc["carrier"], agent_id=doc.get("agent_id"),
                          label=doc.get("label"), verified_at=doc.get("verified_at"), created_at=doc["created_at"],
                          updated_at=doc["updated_at"])
