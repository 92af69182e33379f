"""Accounts, sessions and credentials: register, login, refresh rotation, logout, invitations, API-key auth.

Sessions: a login opens a session; its refresh tokens rotate (each is single use). Presenting a refresh token a
second time means it was copied, so the whole session (the token family) is revoked. Access tokens name their
session, and the session and membership are checked on every request, so logout and removal act at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.config import BackendSettings
from backend.db.collections import (
    API_KEY_USAGE,
    API_KEYS,
    INVITATIONS,
    MEMBERSHIPS,
    ORGANIZATIONS,
    REFRESH_TOKENS,
    SESSIONS,
    TOKEN_USES,
    USERS,
    Db,
)
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, unauthorized
from backend.models.auth import (
    AcceptInvitationRequest,
    LoginRequest,
    MembershipOut,
    MeResponse,
    OrgOut,
    RegisterRequest,
    TokenResponse,
    UserOut,
)
from backend.security import opaque
from backend.security.passwords import Passwords
from backend.security.permissions import Principal, Role
from backend.security.principal_cache import PrincipalCache
from backend.security.tokens import AccessClaims, TokenError, decode_access_token, mint_access_token
from backend.services.audit import AuditLog
from backend.services.rate_limit import RateLimiter

log = logging.getLogger(__name__)


def membership_id(org_id: str, user_id: str) -> str:
    return f"{org_id}:{user_id}"


class AuthService:
    def __init__(
        self, db: Db, settings: BackendSettings, passwords: Passwords, limiter: RateLimiter, audit: AuditLog,
        principals: PrincipalCache,
    ) -> None:
        self._db = db
        self._principals = principals
        self._resolving: dict[str, asyncio.Future[Principal]] = {}
        self._settings = settings
        self._passwords = passwords
        self._limiter = limiter
        self._audit = audit
        self._jwt_secret = settings.jwt_secret.get_secret_value()
        self._key_last_used: dict[str, float] = {}

    # ---------------------------------------------------------------- accounts

    async def register(self, body: RegisterRequest, client_ip: str) -> TokenResponse:
        decision = await self._limiter.hit("register-ip", client_ip, self._settings.register_per_ip_per_hour, 3600)
        if not decision.allowed:
            raise _rate_limited(decision.retry_after_s)
        email = body.email.lower()
        if await self._db[USERS].find_one({"email": email}, {"_id": 1}):
            raise conflict("An account with this email already exists; sign in instead", code="email_taken")
        user_id = await self._create_user(email, body.name, body.password)
        org_id = new_id()
        now = utcnow()
        await self._db[ORGANIZATIONS].insert_one({"_id": org_id, "name": body.org_name, "created_at": now,
                                                  "created_by": user_id})
        await self._add_membership(org_id, user_id, Role.owner)
        await self._audit.record(org_id, f"user:{user_id}", "organization.created", "organization", org_id)
        return await self._issue(user_id, org_id, Role.owner)

    async def _create_user(self, email: str, name: str | None, password: str) -> str:
        user_id = new_id()
        doc = {"_id": user_id, "email": email, "name": name, "password_hash": await self._passwords.hash(password),
               "created_at": utcnow()}
        try:
            await self._db[USERS].insert_one(doc)
        except DuplicateKeyError as exc:
            raise conflict("An account with this email already exists; sign in instead", code="email_taken") from exc
        return user_id

    async def _add_membership(self, org_id: str, user_id: str, role: Role) -> bool:
        try:
            await self._db[MEMBERSHIPS].insert_one({
                "_id": membership_id(org_id, user_id), "org_id": org_id, "user_id": user_id, "role": role.value,
                "created_at": utcnow(),
            })
            return True
        except DuplicateKeyError:
            return False

    # ---------------------------------------------------------------- login / tokens

    async def login(self, body: LoginRequest, client_ip: str) -> TokenResponse:
        s = self._settings
        email = body.email.lower()
        by_ip = await self._limiter.hit("login-ip", client_ip, s.login_attempts_per_ip_per_minute, 60)
        if not by_ip.allowed:
            raise _rate_limited(by_ip.retry_after_s)
        # Guessing from one address is cut off for that address only; the account's owner, elsewhere, still gets in.
        pair = f"{email}|{client_ip}"
        by_pair = await self._limiter.exceeded("login-fail", pair, s.login_failures_per_email, s.login_failure_window_s)
        if not by_pair.allowed:
            raise _rate_limited(by_pair.retry_after_s)
        # Guesses spread over many addresses slow every attempt on the account down, exponentially, never refuse.
        failures = await self._limiter.count("login-fail-email", email, s.login_failure_window_s)
        await asyncio.sleep(login_delay_s(failures, s.login_failures_per_email, s.login_max_delay_s))
        user = await self._db[USERS].find_one({"email": email})
        if not await self._passwords.verify(user["password_hash"] if user else None, body.password) or user is None:
            await self._limiter.hit("login-fail", pair, s.login_failures_per_email, s.login_failure_window_s)
            await self._limiter.record("login-fail-email", email, s.login_failure_window_s)
            raise unauthorized("Email or password is wrong", code="invalid_credentials")
        if self._passwords.needs_rehash(user["password_hash"]):
            await self._db[USERS].update_one({"_id": user["_id"]},
                                             {"$set": {"password_hash": await self._passwords.hash(body.password)}})
        org_id, role = await self._pick_membership(user["_id"], body.organization_id)
        return await self._issue(user["_id"], org_id, role)

    async def _pick_membership(self, user_id: str, org_id: str | None) -> tuple[str, Role]:
        if org_id:
            membership = await self._db[MEMBERSHIPS].find_one({"_id": membership_id(org_id, user_id)})
            if membership is None:
                raise ApiError(403, "not_a_member", "You are not a member of that organisation")
            return org_id, Role(membership["role"])
        cursor = self._db[MEMBERSHIPS].find({"user_id": user_id}).sort("created_at", 1).limit(1)
        first = [m async for m in cursor]
        if not first:
            raise ApiError(403, "no_organization", "This account belongs to no organisation")
        return first[0]["org_id"], Role(first[0]["role"])

    async def _issue(self, user_id: str, org_id: str, role: Role, session_id: str | None = None) -> TokenResponse:
        now = utcnow()
        if session_id is None:
            session_id = new_id()
            await self._db[SESSIONS].insert_one({
                "_id": session_id, "user_id": user_id, "org_id": org_id, "created_at": now,
                "expires_at": now + timedelta(seconds=self._settings.refresh_token_ttl_s), "revoked_at": None,
            })
        token_id, secret = new_id(), opaque.new_secret()
        await self._db[REFRESH_TOKENS].insert_one({
            "_id": token_id, "session_id": session_id, "user_id": user_id, "org_id": org_id,
            "token_hash": opaque.hash_secret(secret), "created_at": now,
            "expires_at": now + timedelta(seconds=self._settings.refresh_token_ttl_s),
        })
        access, _exp = mint_access_token(self._jwt_secret, user_id, org_id, session_id,
                                         self._settings.access_token_ttl_s)
        return TokenResponse(
            access_token=access, refresh_token=opaque.compose(opaque.REFRESH_PREFIX, token_id, secret),
            expires_in=self._settings.access_token_ttl_s, organization_id=org_id, role=role.value,
        )

    async def refresh(self, refresh_token: str) -> TokenResponse:
        parsed = opaque.parse(refresh_token, opaque.REFRESH_PREFIX)
        if parsed is None:
            raise unauthorized("Invalid refresh token", code="invalid_refresh_token")
        token_id, secret = parsed
        record = await self._db[REFRESH_TOKENS].find_one({"_id": token_id})
        if record is None or not opaque.secret_matches(secret, record["token_hash"]):
            raise unauthorized("Invalid refresh token", code="invalid_refresh_token")
        session = await self._db[SESSIONS].find_one({"_id": record["session_id"]})
        now = utcnow()
        if session is None or session.get("revoked_at") is not None or session["expires_at"] <= now:
            raise unauthorized("This session has ended; sign in again", code="session_revoked")
        if record["expires_at"] <= now:
            raise unauthorized("Refresh token expired; sign in again", code="refresh_token_expired")
        try:
            await self._db[TOKEN_USES].insert_one({"_id": f"rt:{token_id}", "at": now})
        except DuplicateKeyError:
            # A rotated token came back: someone holds a copy. End the whole family.
            await self.revoke_session(session["_id"], "refresh_token_reuse")
            await self._audit.record(session["org_id"], f"user:{session['user_id']}", "session.reuse_detected",
                                     "session", session["_id"])
            raise unauthorized("Refresh token was already used; the session has been ended for safety",
                               code="refresh_token_reused") from None
        membership = await self._db[MEMBERSHIPS].find_one({"_id": membership_id(session["org_id"], session["user_id"])})
        if membership is None:
            await self.revoke_session(session["_id"], "membership_removed")
            raise unauthorized("You are no longer a member of this organisation", code="membership_revoked")
        return await self._issue(session["user_id"], session["org_id"], Role(membership["role"]), session["_id"])

    async def revoke_session(self, session_id: str, reason: str) -> None:
        await self._db[SESSIONS].update_one(
            {"_id": session_id}, {"$set": {"revoked_at": utcnow(), "revoked_reason": reason}}
        )
        self._principals.forget(session_id=session_id)

    async def logout(self, principal: Principal, refresh_token: str | None, all_sessions: bool) -> None:
        if principal.session_id:
            await self.revoke_session(principal.session_id, "logout")
        if refresh_token and (parsed := opaque.parse(refresh_token, opaque.REFRESH_PREFIX)):
            record = await self._db[REFRESH_TOKENS].find_one({"_id": parsed[0]})
            if record and record["user_id"] == principal.user_id and opaque.secret_matches(parsed[1], record["token_hash"]):
                await self.revoke_session(record["session_id"], "logout")
        if all_sessions and principal.user_id:
            async for session in self._db[SESSIONS].find({"user_id": principal.user_id, "revoked_at": None}, {"_id": 1}):
                await self.revoke_session(session["_id"], "logout_all")

    async def switch_organization(self, principal: Principal, org_id: str) -> TokenResponse:
        if not principal.user_id:
            raise ApiError(403, "forbidden", "API keys belong to one organisation")
        membership = await self._db[MEMBERSHIPS].find_one({"_id": membership_id(org_id, principal.user_id)})
        if membership is None:
            raise ApiError(404, "not_found", "Organisation not found")
        return await self._issue(principal.user_id, org_id, Role(membership["role"]))

    # ---------------------------------------------------------------- per-request authentication

    async def principal_from_access_token(self, token: str) -> Principal:
        try:
            claims = decode_access_token(self._jwt_secret, token)
        except TokenError as exc:
            message = "Access token expired" if "expired" in str(exc).lower() else "Invalid access token"
            code = "token_expired" if "expired" in str(exc).lower() else "invalid_token"
            raise unauthorized(message, code=code) from exc
        cache_key = f"s:{claims.session_id}:{claims.user_id}:{claims.org_id}"
        if (cached := self._principals.get(cache_key)) is not None:
            return cached
        # Concurrent requests of one session share one lookup instead of each reading the same two documents.
        if (pending := self._resolving.get(cache_key)) is not None:
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(self._resolve_session(claims, cache_key))
        self._resolving[cache_key] = task
        return await asyncio.shield(task)

    async def _resolve_session(self, claims: AccessClaims, cache_key: str) -> Principal:
        try:
            return await self._read_session(claims, cache_key)
        finally:
            self._resolving.pop(cache_key, None)

    async def _read_session(self, claims: AccessClaims, cache_key: str) -> Principal:
        session, membership = await asyncio.gather(
            self._db[SESSIONS].find_one({"_id": claims.session_id}, {"revoked_at": 1, "user_id": 1}),
            self._db[MEMBERSHIPS].find_one({"_id": membership_id(claims.org_id, claims.user_id)}, {"role": 1}),
        )
        if session is None or session.get("revoked_at") is not None or session.get("user_id") != claims.user_id:
            raise unauthorized("This session has ended; sign in again", code="session_revoked")
        if membership is None:
            raise unauthorized("You are no longer a member of this organisation", code="membership_revoked")
        principal = Principal(org_id=claims.org_id, role=Role(membership["role"]), user_id=claims.user_id,
                              session_id=claims.session_id)
        self._principals.put(cache_key, principal)
        return principal

    async def principal_from_api_key(self, key: str) -> Principal:
        parsed = opaque.parse(key, opaque.API_KEY_PREFIX)
        if parsed is None:
            raise unauthorized("Invalid API key", code="invalid_api_key")
        cache_key = f"k:{opaque.hash_secret(key)}"
        if (cached := self._principals.get(cache_key)) is not None:
            return cached
        record = await self._db[API_KEYS].find_one({"_id": parsed[0]})
        if record is None or not opaque.secret_matches(parsed[1], record["key_hash"]):
            raise unauthorized("Invalid API key", code="invalid_api_key")
        if record.get("revoked_at") is not None:
            raise unauthorized("This API key has been revoked", code="api_key_revoked")
        expires_at = record.get("expires_at")
        if expires_at is not None and expires_at <= utcnow():
            raise unauthorized("This API key has expired", code="api_key_expired")
        await self._note_key_use(record["_id"])
        principal = Principal(org_id=record["org_id"], role=Role(record["role"]), api_key_id=record["_id"])
        self._principals.put(cache_key, principal)
        return principal

    async def _note_key_use(self, key_id: str) -> None:
        # At most once a minute per key and process; a separate document so it never races a revocation.
        now = time.monotonic()
        if now - self._key_last_used.get(key_id, -1e9) < 60:
            return
        self._key_last_used[key_id] = now
        await self._db[API_KEY_USAGE].update_one({"_id": key_id}, {"$set": {"last_used_at": utcnow()}},
                                                       upsert=True)

    # ---------------------------------------------------------------- me

    async def purge_token_uses(self) -> int:
        """Single-use marks (refresh rotations, accepted invitations, browser test-call tokens) outlive the token
        they guard only until that token has expired: the longest lifetime, plus a day of clock slack."""
        keep_s = max(self._settings.refresh_token_ttl_s, self._settings.invitation_ttl_s) + 24 * 3600
        res = await self._db[TOKEN_USES].delete_many({"at": {"$lt": utcnow() - timedelta(seconds=keep_s)}})
        return int(res.deleted_count)

    async def me(self, principal: Principal) -> MeResponse:
        org = await self._db[ORGANIZATIONS].find_one({"_id": principal.org_id})
        if org is None:
            raise unauthorized("Organisation no longer exists")
        user_out: UserOut | None = None
        memberships: list[MembershipOut] = []
        if principal.user_id:
            user = await self._db[USERS].find_one({"_id": principal.user_id})
            if user is not None:
                user_out = UserOut(id=user["_id"], email=user["email"], name=user.get("name"))
            async for m in self._db[MEMBERSHIPS].find({"user_id": principal.user_id}):
                other = org if m["org_id"] == org["_id"] else await self._db[ORGANIZATIONS].find_one({"_id": m["org_id"]})
                if other is not None:
                    memberships.append(MembershipOut(org=_org_out(other), role=m["role"]))
        return MeResponse(user=user_out, org=_org_out(org), role=principal.role.value, organizations=memberships,
                          api_key_id=principal.api_key_id)

    # ---------------------------------------------------------------- invitations

    async def accept_invitation(self, body: AcceptInvitationRequest, client_ip: str) -> TokenResponse:
        decision = await self._limiter.hit("login-ip", client_ip, self._settings.login_attempts_per_ip_per_minute, 60)
        if not decision.allowed:
            raise _rate_limited(decision.retry_after_s)
        parsed = opaque.parse(body.token, opaque.INVITATION_PREFIX)
        invalid = ApiError(400, "invalid_invitation", "This invitation link is not valid")
        if parsed is None:
            raise invalid
        inv = await self._db[INVITATIONS].find_one({"_id": parsed[0]})
        if inv is None or not opaque.secret_matches(parsed[1], inv["token_hash"]) or inv.get("revoked_at"):
            raise invalid
        if inv.get("accepted_at") is not None:
            raise ApiError(410, "invitation_used", "This invitation has already been used")
        if inv["expires_at"] <= utcnow():
            raise ApiError(410, "invitation_expired", "This invitation has expired; ask for a new one")
        user = await self._db[USERS].find_one({"email": inv["email"]})
        if user is not None and not await self._passwords.verify(user["password_hash"], body.password):
            raise unauthorized("This email already has an account: enter its password to join",
                               code="invalid_credentials")
        if user is None and len(body.password) < 10:
            raise ApiError(422, "validation_error", "Password must have at least 10 characters", [
                _detail("body.password", "String should have at least 10 characters")])
        try:
            await self._db[TOKEN_USES].insert_one({"_id": f"inv:{inv['_id']}", "at": utcnow()})
        except DuplicateKeyError:
            raise ApiError(410, "invitation_used", "This invitation has already been used") from None
        user_id = user["_id"] if user else await self._create_user(inv["email"], body.name, body.password)
        role = Role(inv["role"])
        if not await self._add_membership(inv["org_id"], user_id, role):
            existing = await self._db[MEMBERSHIPS].find_one({"_id": membership_id(inv["org_id"], user_id)})
            role = Role(existing["role"]) if existing else role
        await self._db[INVITATIONS].update_one({"_id": inv["_id"]},
                                               {"$set": {"accepted_at": utcnow(), "accepted_by": user_id}})
        await self._audit.record(inv["org_id"], f"user:{user_id}", "invitation.accepted", "invitation", inv["_id"])
        return await self._issue(user_id, inv["org_id"], role)


def _org_out(doc: dict[str, Any]) -> OrgOut:
    return OrgOut(id=doc["_id"], name=doc["name"], created_at=doc.get("created_at"),
                  allow_custom_endpoints=bool(doc.get("allow_custom_endpoints")))


def _detail(path: str, message: str) -> ErrorDetail:
    return ErrorDetail(path=path, message=message, type="value_error")


def login_delay_s(failures: int, free: int, max_delay_s: float) -> float:
    """No delay for the first `free` failures on an account, then 0.25 s doubling per failure, capped."""
    if failures < free:
        return 0.0
    return min(max_delay_s, 0.25 * 2 ** min(failures - free, 16))


def _rate_limited(retry_after: int) -> ApiError:
    return ApiError(429, "rate_limited", f"Too many attempts; try again in {retry_after} s",
                    headers={"Retry-After": str(retry_after)})
