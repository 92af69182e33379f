"""Accounts and sessions: register, login, throttling, token expiry and forgery, refresh rotation and reuse
detection, logout and revocation, invitations."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from datetime import timedelta

import httpx
from backend_testkit import add_member, register
from jose import jwt

from backend.db.collections import INVITATIONS
from backend.db.ids import utcnow
from backend.security.tokens import ACCESS_AUDIENCE, ISSUER, mint_access_token
from backend.services.container import Services
from core.service_auth import mint_service_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_me(client: httpx.AsyncClient) -> None:
    account = await register(client, "ada")
    me = await client.get("/api/v1/auth/me", headers=account.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["email"] == account.email and body["role"] == "owner"
    assert body["org"]["id"] == account.org_id and body["organizations"][0]["role"] == "owner"
    login = await client.post("/api/v1/auth/login", json={"email": account.email.upper(), "password": account.password})
    assert login.status_code == 200, login.text
    assert login.json()["organization_id"] == account.org_id
    assert "va_refresh" in login.headers.get("set-cookie", "") and "HttpOnly" in login.headers["set-cookie"]
    assert "password" not in me.text and "hash" not in me.text


async def test_register_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    account = await register(client, "dup")
    again = await client.post("/api/v1/auth/register", json={"email": account.email, "password": "another-password-1",
                                                             "name": "x", "org_name": "y"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    account = await register(client, "eve")
    wrong = await client.post("/api/v1/auth/login", json={"email": account.email, "password": "not-the-password"})
    unknown = await client.post("/api/v1/auth/login", json={"email": f"nobody-{uuid.uuid4().hex}@example.com",
                                                            "password": "whatever-123"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "invalid_credentials"


async def test_login_is_rate_limited_per_email(client: httpx.AsyncClient) -> None:
    account = await register(client, "brute")
    for _ in range(5):  # login_failures_per_email=5 in the test settings
        resp = await client.post("/api/v1/auth/login", json={"email": account.email, "password": "guess-guess-1"})
        assert resp.status_code == 401
    blocked = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["error"]["code"] == "rate_limited"


async def test_expired_access_token_is_rejected(client: httpx.AsyncClient, services: Services) -> None:
    account = await register(client, "exp")
    me = (await client.get("/api/v1/auth/me", headers=account.headers)).json()
    claims = jwt.get_unverified_claims(account.access_token)
    secret = services.settings.jwt_secret.get_secret_value()
    expired, _ = mint_access_token(secret, me["user"]["id"], account.org_id, claims["sid"], ttl_s=60,
                                   now=time.time() - 3600)
    resp = await client.get("/api/v1/auth/me", headers=bearer(expired))
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "token_expired"
    assert resp.headers["www-authenticate"] == "Bearer"


async def test_forged_tokens_are_rejected(client: httpx.AsyncClient, services: Services) -> None:
    account = await register(client, "forge")
    claims = jwt.get_unverified_claims(account.access_token)
    # Another algorithm with the right secret, the right algorithm with a wrong secret, alg=none, a service token.
    secret = services.settings.jwt_secret.get_secret_value()
    other_alg = jwt.encode(claims, secret, algorithm="HS512")
    wrong_key = jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256")
    header = jwt.get_unverified_header(account.access_token)

    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    none_alg = f"{b64({**header, 'alg': 'none'})}.{b64(claims)}."
    service_token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "voice-server")
    tampered = jwt.encode({**claims, "org": "someone-elses-org"}, "guess", algorithm="HS256")
    for token in (other_alg, wrong_key, none_alg, service_token, tampered, "garbage"):
        resp = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert resp.status_code == 401, token
    assert claims["aud"] == ACCESS_AUDIENCE and claims["iss"] == ISSUER


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    account = await register(client, "rot")
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert (await client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"]))).status_code == 200
    # The old token comes back: someone copied it. The whole session ends, including the newest tokens.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "refresh_token_reused"
    newest = await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newest.status_code == 401 and newest.json()["error"]["code"] == "session_revoked"
    assert (await client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"]))).status_code == 401
    # Other sessions of the same user are untouched.
    login = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    assert (await client.get("/api/v1/auth/me", headers=bearer(login.json()["access_token"]))).status_code == 200


async def test_refresh_with_cookie_and_bad_tokens(client: httpx.AsyncClient) -> None:
    account = await register(client, "cookie")
    client.cookies.clear()
    resp = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"va_refresh={account.refresh_token}"})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    for token in ("vrt_" + "0" * 32 + ".abcdefghijklmnopqrstuvwxyz", "nonsense", account.refresh_token[:-3] + "xyz"):
        bad = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert bad.status_code == 401
    missing = await client.post("/api/v1/auth/refresh", json={})
    assert missing.status_code == 401


async def test_logout_revokes_access_and_refresh(client: httpx.AsyncClient) -> None:
    account = await register(client, "bye")
    other = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token},
                            headers=account.headers)
    assert out.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    # A second session stays until "all sessions" logout.
    other_headers = bearer(other.json()["access_token"])
    assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 200
    third = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    await client.post("/api/v1/auth/logout", json={"all_sessions": True}, headers=bearer(third.json()["access_token"]))
    assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 401


async def test_removed_member_and_role_change_take_effect_at_once(client: httpx.AsyncClient) -> None:
    owner = await register(client, "boss")
    admin = await add_member(client, owner, "admin")
    assert (await client.get("/api/v1/webhooks", headers=admin.headers)).status_code == 200
    demote = await client.patch(f"/api/v1/org/members/{admin.user_id}", json={"role": "member"}, headers=owner.headers)
    assert demote.status_code == 200 and demote.json()["role"] == "member"
    assert (await client.get("/api/v1/webhooks", headers=admin.headers)).status_code == 403
    removed = await client.delete(f"/api/v1/org/members/{admin.user_id}", headers=owner.headers)
    assert removed.status_code == 204
    assert (await client.get("/api/v1/agents", headers=admin.headers)).status_code == 401
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": admin.refresh_token})
    assert again.status_code == 401


async def test_last_owner_cannot_leave_or_be_demoted(client: httpx.AsyncClient) -> None:
    owner = await register(client, "solo")
    demote = await client.patch(f"/api/v1/org/members/{owner.user_id}", json={"role": "admin"}, headers=owner.headers)
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_owner"
    leave = await client.delete(f"/api/v1/org/members/{owner.user_id}", headers=owner.headers)
    assert leave.status_code == 409


async def test_admin_cannot_touch_owners_or_grant_owner(client: httpx.AsyncClient) -> None:
    owner = await register(client, "own")
    admin = await add_member(client, owner, "admin")
    assert (await client.patch(f"/api/v1/org/members/{owner.user_id}", json={"role": "member"},
                               headers=admin.headers)).status_code == 403
    assert (await client.post("/api/v1/org/invitations", json={"email": "x@example.com", "role": "owner"},
                              headers=admin.headers)).status_code == 403
    member = await add_member(client, owner, "member")
    promote = await client.patch(f"/api/v1/org/members/{member.user_id}", json={"role": "admin"}, headers=admin.headers)
    assert promote.status_code == 200


async def test_invitation_is_single_use(client: httpx.AsyncClient) -> None:
    owner = await register(client, "inv")
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    inv = await client.post("/api/v1/org/invitations", json={"email": email, "role": "member"}, headers=owner.headers)
    assert inv.status_code == 201
    token = inv.json()["token"]
    assert inv.json()["accept_url"].endswith(token)
    listed = await client.get("/api/v1/org/invitations", headers=owner.headers)
    assert token not in listed.text and listed.json()[0]["token"] is None
    accepted = await client.post("/api/v1/auth/invitations/accept",
                                 json={"token": token, "password": "new-member-pass", "name": "New"})
    assert accepted.status_code == 200 and accepted.json()["role"] == "member"
    assert accepted.json()["organization_id"] == owner.org_id
    again = await client.post("/api/v1/auth/invitations/accept",
                              json={"token": token, "password": "new-member-pass", "name": "New"})
    assert again.status_code == 410 and again.json()["error"]["code"] == "invitation_used"
    forged = await client.post("/api/v1/auth/invitations/accept",
                               json={"token": token[:-4] + "abcd", "password": "new-member-pass"})
    assert forged.status_code == 400


async def test_expired_and_revoked_invitations(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "old")
    inv = (await client.post("/api/v1/org/invitations", json={"email": f"late-{uuid.uuid4().hex[:6]}@example.com"},
                             headers=owner.headers)).json()
    await services.db[INVITATIONS].update_one({"_id": inv["id"]},
                                              {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    late = await client.post("/api/v1/auth/invitations/accept", json={"token": inv["token"], "password": "late-pass-123"})
    assert late.status_code == 410 and late.json()["error"]["code"] == "invitation_expired"
    inv2 = (await client.post("/api/v1/org/invitations", json={"email": f"rev-{uuid.uuid4().hex[:6]}@example.com"},
                              headers=owner.headers)).json()
    assert (await client.delete(f"/api/v1/org/invitations/{inv2['id']}", headers=owner.headers)).status_code == 204
    revoked = await client.post("/api/v1/auth/invitations/accept",
                                json={"token": inv2["token"], "password": "late-pass-123"})
    assert revoked.status_code == 400


async def test_existing_user_joins_second_org_and_switches(client: httpx.AsyncClient) -> None:
    first = await register(client, "first")
    second = await register(client, "second")
    inv = (await client.post("/api/v1/org/invitations", json={"email": first.email, "role": "admin"},
                             headers=second.headers)).json()
    wrong = await client.post("/api/v1/auth/invitations/accept", json={"token": inv["token"], "password": "wrong-pass-1"})
    assert wrong.status_code == 401
    ok = await client.post("/api/v1/auth/invitations/accept", json={"token": inv["token"], "password": first.password})
    assert ok.status_code == 200 and ok.json()["organization_id"] == second.org_id and ok.json()["role"] == "admin"
    me = (await client.get("/api/v1/auth/me", headers=first.headers)).json()
    assert {m["org"]["id"] for m in me["organizations"]} == {first.org_id, second.org_id}
    switched = await client.post("/api/v1/auth/switch-organization", json={"organization_id": second.org_id},
                                 headers=first.headers)
    assert switched.status_code == 200 and switched.json()["role"] == "admin"
    login = await client.post("/api/v1/auth/login", json={"email": first.email, "password": first.password,
                                                          "organization_id": second.org_id})
    assert login.json()["organization_id"] == second.org_id
    stranger = await register(client, "stranger")
    denied = await client.post("/api/v1/auth/switch-organization", json={"organization_id": stranger.org_id},
                               headers=first.headers)
    assert denied.status_code == 404


async def test_api_keys_are_hashed_shown_once_and_revocable(client: httpx.AsyncClient) -> None:
    owner = await register(client, "keys")
    created = await client.post("/api/v1/org/api-keys", json={"name": "CRM", "role": "admin"}, headers=owner.headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("vak_")
    listed = await client.get("/api/v1/org/api-keys", headers=owner.headers)
    assert key not in listed.text and listed.json()[0]["key"] is None
    assert (await client.get("/api/v1/agents", headers={"X-API-Key": key})).status_code == 200
    assert (await client.get("/api/v1/agents", headers=bearer(key))).status_code == 200
    me = (await client.get("/api/v1/auth/me", headers={"X-API-Key": key})).json()
    assert me["user"] is None and me["api_key_id"] == created.json()["id"]
    # Keys never manage keys or members, whatever their role.
    assert (await client.post("/api/v1/org/api-keys", json={"name": "more"}, headers={"X-API-Key": key})).status_code == 403
    revoke = await client.delete(f"/api/v1/org/api-keys/{created.json()['id']}", headers=owner.headers)
    assert revoke.status_code == 204
    denied = await client.get("/api/v1/agents", headers={"X-API-Key": key})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "api_key_revoked"
    assert (await client.get("/api/v1/agents", headers={"X-API-Key": key[:-2] + "zz"})).status_code == 401


async def test_member_cannot_create_admin_key(client: httpx.AsyncClient) -> None:
    owner = await register(client, "kr")
    admin = await add_member(client, owner, "admin")
    resp = await client.post("/api/v1/org/api-keys", json={"name": "k", "role": "admin"}, headers=admin.headers)
    assert resp.status_code == 201
