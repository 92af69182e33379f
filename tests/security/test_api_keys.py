"""Finding 8: API keys expire when asked to, and never outlive or outrank the member who made them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from backend_testkit import add_member, register


async def _key(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> httpx.Response:
    return await client.post("/api/v1/org/api-keys", json={"name": "k", **body}, headers=headers)


async def test_an_expired_key_stops_working(client: httpx.AsyncClient) -> None:
    owner = await register(client, "expiry")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    made = await _key(client, owner.headers, role="member", expires_at=soon)
    assert made.status_code == 201, made.text
    assert made.json()["expires_at"] is not None
    key = {"X-API-Key": made.json()["key"]}
    assert (await client.get("/api/v1/agents", headers=key)).status_code == 200
    await asyncio.sleep(3.5)  # past the expiry and the auth cache
    resp = await client.get("/api/v1/agents", headers=key)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "api_key_expired", resp.text
    past = await _key(client, owner.headers, expires_at=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    assert past.status_code == 422, past.text


async def test_a_removed_members_keys_are_revoked(client: httpx.AsyncClient) -> None:
    owner = await register(client, "leaver-org")
    admin = await add_member(client, owner, "admin", "leaver")
    made = await _key(client, admin.headers, role="admin")
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}
    assert (await client.get("/api/v1/agents", headers=key)).status_code == 200
    assert (await client.delete(f"/api/v1/org/members/{admin.user_id}", headers=owner.headers)).status_code == 204
    await asyncio.sleep(1.5)  # the auth cache (AUTH_CACHE_TTL_S) on other replicas
    assert (await client.get("/api/v1/agents", headers=key)).status_code == 401


async def test_a_demoted_members_keys_are_capped_at_the_new_role(client: httpx.AsyncClient) -> None:
    owner = await register(client, "demoted-org")
    admin = await add_member(client, owner, "admin", "demoted")
    made = await _key(client, admin.headers, role="admin")
    key = {"X-API-Key": made.json()["key"]}
    agent = {"name": "made by a key", "config": {}}
    assert (await client.post("/api/v1/agents", json=agent, headers=key)).status_code == 201
    demoted = await client.patch(f"/api/v1/org/members/{admin.user_id}", json={"role": "member"},
                                 headers=owner.headers)
    assert demoted.status_code == 200, demoted.text
    await asyncio.sleep(1.5)
    resp = await client.post("/api/v1/agents", json=agent, headers=key)
    assert resp.status_code == 403, resp.text
    assert (await client.get("/api/v1/agents", headers=key)).status_code == 200  # still a member's key
