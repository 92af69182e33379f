"""Organisation settings, members and their roles, invitations and API keys."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from backend.config import BackendSettings
from backend.db.collections import (
    API_KEY_USAGE,
    API_KEYS,
    INVITATIONS,
    MEMBERSHIPS,
    ORGANIZATIONS,
    SESSIONS,
    USERS,
    Db,
)
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, forbidden, not_found
from backend.models.auth import OrgOut
from backend.models.org import (
    ApiKeyCreate,
    ApiKeyOut,
    InvitationCreate,
    InvitationOut,
    MemberOut,
    MemberUpdate,
    OrgUpdate,
)
from backend.security import opaque
from backend.security.permissions import ROLE_RANK, Principal, Role
from backend.security.principal_cache import PrincipalCache
from backend.services.audit import AuditLog
from backend.services.auth import membership_id

MAX_API_KEY_LIFETIME = timedelta(days=366)


class OrgService:
    def __init__(self, db: Db, settings: BackendSettings, audit: AuditLog, principals: PrincipalCache) -> None:
        self._db = db
        self._principals = principals
        self._settings = settings
        self._audit = audit

    # ---------------------------------------------------------------- organisation

    async def get(self, principal: Principal) -> OrgOut:
        doc = await self._db[ORGANIZATIONS].find_one({"_id": principal.org_id})
        if doc is None:
            raise not_found("Organisation")
        return OrgOut(id=doc["_id"], name=doc["name"], created_at=doc.get("created_at"),
                  allow_custom_endpoints=bool(doc.get("allow_custom_endpoints")))

    async def update(self, principal: Principal, body: OrgUpdate) -> OrgOut:
        changes = body.model_dump(exclude_none=True)
        if changes:
            await self._db[ORGANIZATIONS].update_one({"_id": principal.org_id}, {"$set": changes})
        await self._audit.record(principal.org_id, principal, "organization.updated", "organization",
                                 principal.org_id, changes)
        return await self.get(principal)

    # ---------------------------------------------------------------- members

    async def members(self, principal: Principal) -> list[MemberOut]:
        out = []
        async for m in self._db[MEMBERSHIPS].find({"org_id": principal.org_id}).sort("created_at", 1):
            user = await self._db[USERS].find_one({"_id": m["user_id"]}, {"email": 1, "name": 1})
            if user is not None:
                out.append(MemberOut(user_id=m["user_id"], email=user["email"], name=user.get("name"), role=m["role"],
                                     joined_at=m.get("created_at")))
        return out

    async def _membership(self, principal: Principal, user_id: str) -> dict[str, Any]:
        doc = await self._db[MEMBERSHIPS].find_one({"_id": membership_id(principal.org_id, user_id)})
        if doc is None:
            raise not_found("Member")
        return doc

    async def _owner_count(self, org_id: str) -> int:
        return await self._db[MEMBERSHIPS].count_documents({"org_id": org_id, "role": Role.owner.value})

    def _check_can_manage(self, principal: Principal, target_role: Role, new_role: Role | None = None) -> None:
        # Only owners touch owners; nobody grants more than they have.
        if Role.owner in (target_role, new_role) and principal.role != Role.owner:
            raise forbidden("Only an owner can change or remove owners")
        if new_role is not None and ROLE_RANK[new_role] > ROLE_RANK[principal.role]:
            raise forbidden("You cannot grant a role above your own")

    async def update_member(self, principal: Principal, user_id: str, body: MemberUpdate) -> MemberOut:
        current = await self._membership(principal, user_id)
        old, new = Role(current["role"]), Role(body.role)
        self._check_can_manage(principal, old, new)
        if old == Role.owner and new != Role.owner and await self._owner_count(principal.org_id) <= 1:
            raise conflict("An organisation needs at least one owner", code="last_owner")
        await self._db[MEMBERSHIPS].update_one({"_id": current["_id"]}, {"$set": {"role": new.value}})
        self._principals.forget(user_id=user_id, org_id=principal.org_id)
        await self._cap_keys_of(principal.org_id, user_id, new)
        await self._audit.record(principal.org_id, principal, "member.role_changed", "user", user_id,
                                 {"from": old.value, "to": new.value})
        user = await self._db[USERS].find_one({"_id": user_id}) or {}
        return MemberOut(user_id=user_id, email=user.get("email", ""), name=user.get("name"), role=new.value,
                         joined_at=current.get("created_at"))

    async def remove_member(self, principal: Principal, user_id: str) -> None:
        current = await self._membership(principal, user_id)
        role = Role(current["role"])
        if user_id != principal.user_id:
            self._check_can_manage(principal, role)
        if role == Role.owner and await self._owner_count(principal.org_id) <= 1:
            raise conflict("An organisation needs at least one owner", code="last_owner")
        await self._db[MEMBERSHIPS].delete_one({"_id": current["_id"]})
        self._principals.forget(user_id=user_id, org_id=principal.org_id)
        await self._revoke_keys_of(principal.org_id, user_id)
        async for session in self._db[SESSIONS].find({"user_id": user_id, "org_id": principal.org_id,
                                                      "revoked_at": None}, {"_id": 1}):
            await self._db[SESSIONS].update_one({"_id": session["_id"]},
                                                {"$set": {"revoked_at": utcnow(), "revoked_reason": "member_removed"}})
        await self._audit.record(principal.org_id, principal, "member.removed", "user", user_id)

    async def _keys_of(self, org_id: str, user_id: str) -> list[dict[str, Any]]:
        return [k async for k in self._db[API_KEYS].find({"org_id": org_id, "created_by": f"user:{user_id}",
                                                           "revoked_at": None})]

    async def _revoke_keys_of(self, org_id: str, user_id: str) -> None:
        """A removed member's keys go with them: a key is never more than its creator may still do."""
        for key in await self._keys_of(org_id, user_id):
            await self._db[API_KEYS].update_one({"_id": key["_id"]}, {"$set": {"revoked_at": utcnow(),
                                                                               "revoked_reason": "creator_removed"}})
            self._principals.forget(api_key_id=key["_id"])

    async def _cap_keys_of(self, org_id: str, user_id: str, role: Role) -> None:
        """A demoted member's keys are capped at their new role."""
        for key in await self._keys_of(org_id, user_id):
            if ROLE_RANK[Role(key["role"])] > ROLE_RANK[role]:
                await self._db[API_KEYS].update_one({"_id": key["_id"]}, {"$set": {"role": role.value}})
                self._principals.forget(api_key_id=key["_id"])

    # ---------------------------------------------------------------- invitations

    async def invite(self, principal: Principal, body: InvitationCreate) -> InvitationOut:
        role = Role(body.role)
        self._check_can_manage(principal, Role.member, role)
        email = body.email.lower()
        user = await self._db[USERS].find_one({"email": email}, {"_id": 1})
        if user and await self._db[MEMBERSHIPS].find_one({"_id": membership_id(principal.org_id, user["_id"])}):
            raise conflict("This person is already a member", code="already_member")
        inv_id, secret = new_id(), opaque.new_secret()
        now = utcnow()
        doc = {
            "_id": inv_id, "org_id": principal.org_id, "email": email, "role": role.value,
            "token_hash": opaque.hash_secret(secret), "invited_by": principal.actor, "created_at": now,
            "expires_at": now + timedelta(seconds=self._settings.invitation_ttl_s), "accepted_at": None,
            "revoked_at": None,
        }
        await self._db[INVITATIONS].insert_one(doc)
        await self._audit.record(principal.org_id, principal, "invitation.created", "invitation", inv_id,
                                 {"email": email, "role": role.value})
        token = opaque.compose(opaque.INVITATION_PREFIX, inv_id, secret)
        out = _invitation_out(doc)
        out.token = token
        out.accept_url = f"{self._settings.public_base_url.rstrip('/')}/accept-invitation?token={token}"
        return out

    async def invitations(self, principal: Principal) -> list[InvitationOut]:
        cursor = self._db[INVITATIONS].find({"org_id": principal.org_id}).sort("created_at", -1).limit(200)
        return [_invitation_out(d) async for d in cursor]

    async def revoke_invitation(self, principal: Principal, invitation_id: str) -> None:
        doc = await self._db[INVITATIONS].find_one({"_id": invitation_id})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Invitation")
        await self._db[INVITATIONS].update_one({"_id": invitation_id}, {"$set": {"revoked_at": utcnow()}})
        await self._audit.record(principal.org_id, principal, "invitation.revoked", "invitation", invitation_id)

    # ---------------------------------------------------------------- API keys

    async def create_api_key(self, principal: Principal, body: ApiKeyCreate) -> ApiKeyOut:
        role = Role(body.role)
        if ROLE_RANK[role] > ROLE_RANK[principal.role]:
            raise forbidden("An API key cannot have a role above yours")
        now = utcnow()
        expires_at = body.expires_at.astimezone(UTC) if body.expires_at is not None else None
        if expires_at is not None and not now < expires_at <= now + MAX_API_KEY_LIFETIME:
            raise ApiError(422, "validation_error", "body.expires_at: must be in the future, at most a year ahead",
                           [ErrorDetail(path="body.expires_at", type="value_error",
                                        message="must be in the future, at most a year ahead")])
        key_id, secret = new_id(), opaque.new_secret()
        key = opaque.compose(opaque.API_KEY_PREFIX, key_id, secret)
        doc = {
            "_id": key_id, "org_id": principal.org_id, "name": body.name, "role": role.value,
            "key_hash": opaque.hash_secret(secret), "prefix": key[:12], "created_by": principal.actor,
            "created_at": now, "revoked_at": None, "expires_at": expires_at,
        }
        await self._db[API_KEYS].insert_one(doc)
        await self._audit.record(principal.org_id, principal, "api_key.created", "api_key", key_id,
                                 {"name": body.name, "role": role.value})
        out = _api_key_out(doc, None)
        out.key = key
        return out

    async def api_keys(self, principal: Principal) -> list[ApiKeyOut]:
        out = []
        async for doc in self._db[API_KEYS].find({"org_id": principal.org_id}).sort("created_at", -1):
            usage = await self._db[API_KEY_USAGE].find_one({"_id": doc["_id"]})
            out.append(_api_key_out(doc, usage))
        return out

    async def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        doc = await self._db[API_KEYS].find_one({"_id": key_id})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("API key")
        if doc.get("revoked_at") is None:
            await self._db[API_KEYS].update_one({"_id": key_id}, {"$set": {"revoked_at": utcnow()}})
            self._principals.forget(api_key_id=key_id)
            await self._audit.record(principal.org_id, principal, "api_key.revoked", "api_key", key_id)


def _invitation_out(doc: dict[str, Any]) -> InvitationOut:
    return InvitationOut(id=doc["_id"], email=doc["email"], role=doc["role"], created_at=doc["created_at"],
                         expires_at=doc["expires_at"], accepted_at=doc.get("accepted_at"),
                         revoked_at=doc.get("revoked_at"))


def _api_key_out(doc: dict[str, Any], usage: dict[str, Any] | None) -> ApiKeyOut:
    return ApiKeyOut(id=doc["_id"], name=doc["name"], role=doc["role"], prefix=doc["prefix"],
                     created_at=doc["created_at"], created_by=doc.get("created_by"),
                     last_used_at=(usage or {}).get("last_used_at"), revoked_at=doc.get("revoked_at"),
                     expires_at=doc.get("expires_at"))

