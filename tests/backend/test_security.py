"""Security controls of the backend, each checked against the real app on real FerretDB: secrets at rest (read raw
from the database), the audit trail of admin actions, every internal route behind a service token (enumerated from
the app, so new routes are covered without editing this file), HSTS behind https, and the pinned JWT algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_testkit import add_member, backend_settings, create_agent, populate_org, register, unique_number
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jose import jwt
from stack_helpers import http_routes

from backend.main import create_app
from backend.security.crypto import DecryptionError, SecretBox
from backend.services.container import Services
from core.service_auth import mint_service_token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _org_documents(services: Services, org_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every raw document in the database that belongs to the organisation, whatever the collection."""
    found = []
    for name in await services.db.list_collection_names():
        async for doc in services.db[name].find({"$or": [{"org_id": org_id}, {"_id": {"$regex": f"^{org_id}"}}]}):
            found.append((name, doc))
    return found


async def test_secrets_are_encrypted_or_hashed_at_rest_and_never_returned(client: httpx.AsyncClient,
                                                                          services: Services) -> None:
    owner = await register(client, "at-rest")
    twilio = {"account_id": "AC" + uuid.uuid4().hex, "auth_token": "twilio-token-" + uuid.uuid4().hex}
    vobiz = {"account_id": "MA_" + uuid.uuid4().hex[:16].upper(), "auth_token": "vobiz-token-" + uuid.uuid4().hex}
    for carrier, creds in (("twilio", twilio), ("vobiz", vobiz)):
        resp = await client.put(f"/api/v1/org/carrier-credentials/{carrier}", json=creds, headers=owner.headers)
        assert resp.status_code == 200, resp.text
    hook = await client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/at-rest", "events": ["call.ended"],
                                                        "active": False}, headers=owner.headers)
    key = await client.post("/api/v1/org/api-keys", json={"name": "at-rest", "role": "admin"}, headers=owner.headers)
    invite = await client.post("/api/v1/org/invitations", json={"email": f"inv-{uuid.uuid4().hex[:6]}@example.com"},
                               headers=owner.headers)
    secrets = [twilio["auth_token"], vobiz["auth_token"], twilio["account_id"], vobiz["account_id"],
               hook.json()["secret"], key.json()["key"], invite.json()["token"]]
    assert all(secrets)

    # Raw documents, straight from FerretDB: no plaintext secret in any of them.
    documents = await _org_documents(services, owner.org_id)
    collections = {name for name, _ in documents}
    assert {"carrier_credentials", "webhooks", "api_keys", "invitations"} <= collections, collections
    for name, doc in documents:
        raw = repr(doc)
        assert not [s for s in secrets if s in raw], f"plaintext secret in {name}"

    # The encryption key comes from the environment (ENCRYPTION_KEY): another key cannot open the ciphertext.
    stored = await services.db["carrier_credentials"].find_one({"_id": f"{owner.org_id}:twilio"})
    assert stored is not None
    ciphertexts = [v for v in stored.values() if isinstance(v, str) and v.startswith("v1.")]
    assert ciphertexts, stored.keys()
    assert services.settings.encryption_key.get_secret_value() == os.environ["ENCRYPTION_KEY"]
    with pytest.raises(DecryptionError):
        SecretBox("a-different-key-" + uuid.uuid4().hex).decrypt(ciphertexts[0], f"org:{owner.org_id}:twilio:auth_token")
    assert "ENCRYPTION_KEY" in backend_settings(encryption_key="").missing_secrets()

    # Masked in every read: the credentials list, the webhook, the key list.
    listed = (await client.get("/api/v1/org/carrier-credentials", headers=owner.headers)).text
    webhook = (await client.get(f"/api/v1/webhooks/{hook.json()['id']}", headers=owner.headers)).text
    keys = (await client.get("/api/v1/org/api-keys", headers=owner.headers)).text
    invitations = (await client.get("/api/v1/org/invitations", headers=owner.headers)).text
    for body in (listed, webhook, keys, invitations):
        assert not [s for s in secrets if s in body]
    assert twilio["account_id"][-4:] in listed and "••••" in listed


AdminAction = Callable[[], Awaitable[httpx.Response]]


async def test_every_admin_action_writes_one_audit_entry(client: httpx.AsyncClient) -> None:
    owner = await register(client, "audited")
    member = await add_member(client, owner, "member", "audited-member")
    leaver = await add_member(client, owner, "member", "audited-leaver")
    agent = await create_agent(client, owner)
    h = owner.headers
    made: dict[str, str] = {}

    async def remember(resp: httpx.Response, name: str) -> httpx.Response:
        if resp.status_code in (200, 201):
            made[name] = resp.json()["id"]
        return resp

    actions: list[tuple[str, AdminAction]] = [
        ("organization.updated", lambda: client.patch("/api/v1/org", json={"name": "Audited org 2"}, headers=h)),
        ("member.role_changed", lambda: client.patch(f"/api/v1/org/members/{member.user_id}", json={"role": "admin"},
                                                     headers=h)),
        ("member.removed", lambda: client.delete(f"/api/v1/org/members/{leaver.user_id}", headers=h)),
        ("invitation.created", lambda: remember_post("/api/v1/org/invitations",
                                                     {"email": f"a-{uuid.uuid4().hex[:6]}@example.com"}, "inv")),
        ("invitation.revoked", lambda: client.delete(f"/api/v1/org/invitations/{made['inv']}", headers=h)),
        ("api_key.created", lambda: remember_post("/api/v1/org/api-keys", {"name": "audited"}, "key")),
        ("api_key.revoked", lambda: client.delete(f"/api/v1/org/api-keys/{made['key']}", headers=h)),
        ("carrier_credentials.updated", lambda: client.put(
            "/api/v1/org/carrier-credentials/twilio",
            json={"account_id": "AC" + uuid.uuid4().hex, "auth_token": "t-" + uuid.uuid4().hex}, headers=h)),
        ("carrier_credentials.deleted", lambda: client.delete("/api/v1/org/carrier-credentials/twilio", headers=h)),
        ("phone_number.created", lambda: remember_post("/api/v1/phone-numbers",
                                                       {"number": unique_number(), "carrier": "twilio"}, "number")),
        ("phone_number.updated", lambda: client.patch(f"/api/v1/phone-numbers/{made['number']}",
                                                      json={"agent_id": agent["id"]}, headers=h)),
        ("phone_number.deleted", lambda: client.delete(f"/api/v1/phone-numbers/{made['number']}", headers=h)),
        ("webhook.created", lambda: remember_post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/a",
                                                                       "events": ["call.ended"], "active": False},
                                                  "webhook")),
        ("webhook.updated", lambda: client.patch(f"/api/v1/webhooks/{made['webhook']}", json={"description": "x"},
                                                 headers=h)),
        ("webhook.deleted", lambda: client.delete(f"/api/v1/webhooks/{made['webhook']}", headers=h)),
        ("agent.updated", lambda: client.patch(f"/api/v1/agents/{agent['id']}", json={"description": "audited"},
                                               headers=h)),
    ]

    async def remember_post(path: str, body: dict[str, Any], name: str) -> httpx.Response:
        return await remember(await client.post(path, json=body, headers=h), name)

    async def audit_ids() -> list[dict[str, Any]]:
        resp = await client.get("/api/v1/org/audit-log?limit=500", headers=h)
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    for action, perform in actions:
        before = {e["id"] for e in await audit_ids()}
        resp = await perform()
        assert resp.status_code < 300, (action, resp.status_code, resp.text)
        new = [e for e in await audit_ids() if e["id"] not in before]
        assert [e["action"] for e in new] == [action], (action, new)
        assert new[0]["actor"] == f"user:{owner.user_id}", new[0]
    # Audit entries of one organisation are not visible to another (the trail is per organisation).
    other = await register(client, "audited-other")
    assert not [e for e in (await client.get("/api/v1/org/audit-log", headers=other.headers)).json()
                if e.get("target_id") in (member.user_id, agent["id"])]


def _internal_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [(method, re.sub(r"{[^}]+}", "x", path)) for method, path, tags in http_routes(app)
            if "internal" in tags or "/internal/" in path]


def _hmac_signed(claims: dict[str, Any], key: bytes) -> str:
    """HS256 by hand: python-jose refuses to use a PEM public key as an HMAC secret, an attacker does not."""
    unsigned = _unsigned(claims, "HS256")[:-1]
    signature = hmac.new(key, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def _unsigned(claims: dict[str, Any], alg: str) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."


async def test_every_internal_route_needs_a_service_token(backend: FastAPI, client: httpx.AsyncClient) -> None:
    """Enumerated from the app's routes: a route added later under /internal (or tagged internal) is checked too."""
    routes = _internal_routes(backend)
    assert len(routes) >= 7, routes
    assert all(path.startswith("/internal/") for _, path in routes), "an internal-tagged route outside /internal"
    owner = await register(client, "internal-probe")
    key = (await client.post("/api/v1/org/api-keys", json={"name": "probe", "role": "admin"},
                             headers=owner.headers)).json()["key"]
    good = jwt.get_unverified_claims(mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "voice-server"))
    credentials: list[dict[str, str]] = [
        {}, owner.headers, {"X-API-Key": key}, _bearer(key),
        _bearer(mint_service_token("not-the-service-secret-" + uuid.uuid4().hex, "voice-server")),
        _bearer(_unsigned(good, "none")),
        _bearer(jwt.encode(good, os.environ["SERVICE_TOKEN_SECRET"], algorithm="HS512")),
        {"Authorization": "Basic dm9pY2U6c2VydmVy"},
    ]
    failures = []
    for method, path in routes:
        for headers in credentials:
            resp = await client.request(method, path, json={}, headers=headers)
            if resp.status_code not in (401, 403):
                failures.append(f"{method} {path} with {list(headers) or 'nothing'}: {resp.status_code}")
    assert not failures, "\n".join(failures)


async def test_hsts_only_behind_https_and_the_ui_cannot_be_framed(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    for base, behind_https in (("https://voice.example.com", True), ("http://127.0.0.1:8000", False)):
        app = create_app(backend_settings(public_base_url=base, frontend_dist=str(tmp_path)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            api, ui = await http.get("/health/live"), await http.get("/")
        for resp in (api, ui):
            assert ("strict-transport-security" in resp.headers) is behind_https, base
            if behind_https:
                assert resp.headers["strict-transport-security"].startswith("max-age=31536000")
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.headers["x-frame-options"] == "DENY"
            assert resp.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in ui.headers["content-security-policy"]
        assert "script-src 'self'" in ui.headers["content-security-policy"]


async def test_jwt_algorithm_is_pinned(client: httpx.AsyncClient, services: Services) -> None:
    account = await register(client, "alg-pin")
    claims = jwt.get_unverified_claims(account.access_token)
    secret = services.settings.jwt_secret.get_secret_value()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = {
        "RS256 (own key)": jwt.encode(claims, rsa_pem.decode(), algorithm="RS256"),
        "ES256 (own key)": jwt.encode(claims, ec_pem.decode(), algorithm="ES256"),
        "HS384 (right secret)": jwt.encode(claims, secret, algorithm="HS384"),
        # Key confusion: an HMAC made with a public key, the classic RS256->HS256 swap.
        "HS256 over a public key": _hmac_signed(claims, public_pem),
        "none": _unsigned(claims, "none"),
        "None": _unsigned(claims, "None"),
        "NONE": _unsigned(claims, "NONE"),
        "none with the real signature": _unsigned(claims, "none") + account.access_token.rsplit(".", 1)[1],
    }
    for label, token in forged.items():
        resp = await client.get("/api/v1/auth/me", headers=_bearer(token))
        assert resp.status_code == 401, label
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 200
    with pytest.raises(ValueError):
        backend_settings(jwt_algorithm="none")
    with pytest.raises(ValueError):
        backend_settings(jwt_algorithm="RS256")


async def test_no_read_by_id_reaches_another_organisation(backend: FastAPI, client: httpx.AsyncClient,
                                                          services: Services) -> None:
    """Every GET route with an id in its path, enumerated from the app (a new one fails here until it has a value
    below): organisation B asks for organisation A's agent, call, recording, campaign, import, number, webhook...
    A gets each (so the ids are real); B gets 404/403 and none of A's data."""
    a = await populate_org(client, services.store, "iso-a")
    b = await register(client, "iso-b")
    campaign = await client.post("/api/v1/campaigns", headers=a.owner.headers, json={
        "name": f"iso {a.marker}", "agent_id": a.agent["id"], "caller_number_ids": [a.number["id"]],
        "windows": {"timezone": "UTC", "days": {d: [{"start": "00:00", "end": "24:00"}] for d in
                                                ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}})
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    imported = await client.post(f"/api/v1/campaigns/{campaign_id}/contacts", headers=a.owner.headers,
                                 files={"file": ("c.csv", f"phone,tag\n+14155552671,{a.marker}\n".encode(), "text/csv")})
    assert imported.status_code == 201, imported.text
    dnc_phone = "+14155559876"
    assert (await client.post("/api/v1/dnc", json={"phone": dnc_phone, "reason": a.marker},
                              headers=a.owner.headers)).status_code == 201
    kb = await client.post("/api/v1/knowledge-bases", headers=a.owner.headers, json={"name": f"iso {a.marker}"})
    assert kb.status_code == 201, kb.text
    test_run = await client.post(f"/api/v1/agents/{a.agent['id']}/test-runs", headers=a.owner.headers, json={
        "version": 1, "suite": f"iso {a.marker}", "results": [{"name": "greets", "status": "passed"}]})
    assert test_run.status_code == 201, test_run.text
    values = {"kb_id": kb.json()["id"], "run_id": test_run.json()["id"], "call_id": a.call_id, "agent_id": a.agent["id"], "number_id": a.number["id"],
              "webhook_id": a.webhook["id"], "campaign_id": campaign_id, "import_id": imported.json()["import_id"],
              "version": "1", "phone": dnc_phone}
    streaming = {"/api/v1/campaigns/{campaign_id}/events"}  # server-sent events: A's stream never ends
    reads = [path for method, path, _ in http_routes(backend)
             if method == "GET" and path.startswith("/api/v1/") and "{" in path]
    assert len(reads) >= 15, reads
    failures = []
    for template in reads:
        names = re.findall(r"{(\w+)}", template)
        unknown = [n for n in names if n not in values]
        if unknown:
            failures.append(f"{template}: add an organisation-A value for {unknown} to this test")
            continue
        url = template.format(**values)
        if template not in streaming:
            own = await client.get(url, headers=a.owner.headers)
            if own.status_code != 200:
                failures.append(f"{template}: A itself got {own.status_code}")
        other = await client.get(url, headers=b.headers)
        if other.status_code not in (403, 404):
            failures.append(f"{template}: B got {other.status_code}")
        leaked = [m for m in (*a.markers(), campaign_id) if m in other.text]
        if leaked:
            failures.append(f"{template}: B saw {leaked}")
    assert not failures, "\n".join(failures)
