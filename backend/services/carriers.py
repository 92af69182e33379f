"""Carrier credentials per organisation: encrypted at rest, masked in every response, decrypted only for the
internal API (voice server and dialer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backend.db.collections import CARRIER_CREDENTIALS, Db
from backend.db.ids import utcnow
from backend.errors import not_found
from backend.models.org import Carrier, CarrierCredentialsIn, CarrierCredentialsOut
from backend.security.crypto import MASKED_SECRET, DecryptionError, SecretBox, mask_identifier
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from core.call_events import CarrierCredentials


def _context(org_id: str, carrier: str, field: str) -> str:
    return f"org:{org_id}:carrier:{carrier}:{field}"


class CarrierCredentialService:
    def __init__(self, db: Db, box: SecretBox, audit: AuditLog, api_base_url: Callable[[str], str | None]) -> None:
        """`api_base_url(carrier)`: the operator's carrier API (BackendSettings.carrier_api_base_url)."""
        self._db = db
        self._box = box
        self._audit = audit
        self._api_base_url = api_base_url

    async def list_masked(self, principal: Principal) -> list[CarrierCredentialsOut]:
        cursor = self._db[CARRIER_CREDENTIALS].find({"org_id": principal.org_id}).sort("carrier", 1)
        return [_masked(doc) async for doc in cursor]

    async def put(self, principal: Principal, carrier: Carrier, body: CarrierCredentialsIn) -> CarrierCredentialsOut:
        org = principal.org_id
        doc = {
            "_id": f"{org}:{carrier}", "org_id": org, "carrier": carrier,
            "account_id_enc": self._box.encrypt(body.account_id, _context(org, carrier, "account_id")),
            "auth_token_enc": self._box.encrypt(body.auth_token, _context(org, carrier, "auth_token")),
            "account_id_masked": mask_identifier(body.account_id),
            "updated_at": utcnow(), "updated_by": principal.actor,
        }
        await self._db[CARRIER_CREDENTIALS].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        await self._audit.record(org, principal, "carrier_credentials.updated", "carrier_credentials", carrier)
        return _masked(doc)

    async def delete(self, principal: Principal, carrier: Carrier) -> None:
        res = await self._db[CARRIER_CREDENTIALS].delete_one({"_id": f"{principal.org_id}:{carrier}"})
        if res.deleted_count == 0:
            raise not_found("Carrier credentials")
        await self._audit.record(principal.org_id, principal, "carrier_credentials.deleted", "carrier_credentials",
                                 carrier)

    async def decrypted(self, org_id: str, carrier: str) -> CarrierCredentials | None:
        """For the internal API only."""
        if carrier not in ("twilio", "vobiz"):
            return None
        doc = await self._db[CARRIER_CREDENTIALS].find_one({"_id": f"{org_id}:{carrier}"})
        if doc is None:
            return None
        try:
            return CarrierCredentials(
                carrier=carrier,  # type: ignore[arg-type]
                account_id=self._box.decrypt(doc["account_id_enc"], _context(org_id, carrier, "account_id")),
                auth_token=self._box.decrypt(doc["auth_token_enc"], _context(org_id, carrier, "auth_token")),
                api_base_url=self._api_base_url(carrier),  # the operator's, never a tenant's
            )
        except DecryptionError:
            return None


def _masked(doc: dict[str, Any]) -> CarrierCredentialsOut:
    return CarrierCredentialsOut(carrier=doc["carrier"], account_id_masked=doc["account_id_masked"],
                                 auth_token_masked=MASKED_SECRET,
                                 updated_at=doc.get("updated_at"))
