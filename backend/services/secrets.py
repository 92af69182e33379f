"""Organisation secrets: API keys for an agent's own LLM/STT/TTS endpoints and HTTP headers for its webhook tools.

Encrypted at rest (AES-256-GCM, backend/security/crypto.py) bound to the organisation and the secret's name, so a
ciphertext copied to another name or organisation does not decrypt. The API is write-only: values go in, only
names, a mask and dates come out; every change is audited. Agents refer to secrets by name; the decrypted values
leave the backend only inside the internal API's answer for one call, and only the ones that call's agent names.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from backend.db.collections import ORG_SECRETS, Db
from backend.db.ids import utcnow
from backend.errors import ApiError, ErrorDetail, not_found
from backend.models.secrets import SecretIn, SecretOut
from backend.security.crypto import MASKED_SECRET, DecryptionError, SecretBox
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from core.agent_config import AgentConfig, SecretName, SecretRef


def _context(org_id: str, name: str) -> str:
    return f"org:{org_id}:secret:{name}"


def header_problem(value: str) -> str | None:
    """Why a secret cannot serve as a tool's headers (it must be a JSON object of string values), or None."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return "must hold a JSON object of HTTP headers, e.g. {\"Authorization\": \"Bearer …\"}"
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        return "must hold a JSON object whose values are strings"
    if any(not k or any(c in k for c in ":\r\n ") or any(c in v for c in "\r\n") for k, v in parsed.items()):
        return "holds a header name or value that is not allowed"
    return None


class SecretService:
    def __init__(self, db: Db, box: SecretBox, audit: AuditLog) -> None:
        self._db = db
        self._box = box
        self._audit = audit

    async def list_masked(self, principal: Principal) -> list[SecretOut]:
        cursor = self._db[ORG_SECRETS].find({"org_id": principal.org_id}).sort("name", 1)
        return [_masked(doc) async for doc in cursor]

    async def put(self, principal: Principal, name: SecretName, body: SecretIn) -> tuple[SecretOut, bool]:
        """Creates the secret, or rotates it (a new value, version + 1). Returns (secret, created)."""
        org, now = principal.org_id, utcnow()
        key = f"{org}:{name}"
        existing = await self._db[ORG_SECRETS].find_one({"_id": key})
        doc = {
            "_id": key, "org_id": org, "name": name, "value_enc": self._box.encrypt(body.value, _context(org, name)),
            "version": (existing["version"] + 1) if existing else 1,
            "created_at": existing["created_at"] if existing else now, "updated_at": now,
            "updated_by": principal.actor,
        }
        await self._db[ORG_SECRETS].replace_one({"_id": key}, doc, upsert=True)
        await self._audit.record(org, principal, "secret.rotated" if existing else "secret.created", "secret", name,
                                 {"version": doc["version"]})
        return _masked(doc), existing is None

    async def delete(self, principal: Principal, name: SecretName) -> None:
        res = await self._db[ORG_SECRETS].delete_one({"_id": f"{principal.org_id}:{name}"})
        if res.deleted_count == 0:
            raise not_found("Secret")
        await self._audit.record(principal.org_id, principal, "secret.deleted", "secret", name)

    async def check_refs(self, org_id: str, config: AgentConfig, prefix: str = "body.config") -> None:
        """422 naming every field that refers to a secret the organisation does not have (or one that cannot be
        used as tool headers), so an agent is never saved with a reference that fails at call time."""
        problems = []
        for ref in config.secret_refs():
            value = await self._value(org_id, ref.name)
            why = (f"no secret named {ref.name!r} in this organisation" if value is None
                   else header_problem(value) if ref.use == "headers" else None)
            if why is not None:
                problems.append(ErrorDetail(path=f"{prefix}.{ref.path}", type="value_error",
                                            message=f"secret {ref.name!r} {why}" if value is not None else why))
        if problems:
            raise ApiError(422, "validation_error", "; ".join(f"{p.path}: {p.message}" for p in problems), problems)

    async def for_call(self, org_id: str, refs: list[SecretRef]) -> dict[str, SecretStr]:
        """For the internal API only: the decrypted values of exactly the named secrets (missing ones left out)."""
        found = {}
        for name in {r.name for r in refs}:
            value = await self._value(org_id, name)
            if value is not None:
                found[name] = SecretStr(value)
        return found

    async def _value(self, org_id: str, name: str) -> str | None:
        doc = await self._db[ORG_SECRETS].find_one({"_id": f"{org_id}:{name}"})
        if doc is None:
            return None
        try:
            return self._box.decrypt(doc["value_enc"], _context(org_id, name))
        except DecryptionError:
            return None


def _masked(doc: dict[str, Any]) -> SecretOut:
    return SecretOut(name=doc["name"], value_masked=MASKED_SECRET, version=doc["version"],
                     created_at=doc["created_at"], updated_at=doc["updated_at"], updated_by=doc.get("updated_by"))
