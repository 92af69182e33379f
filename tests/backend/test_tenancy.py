"""The cross-tenant matrix: organisation B, with full rights in its own organisation, aims every route at
organisation A's resources. Every such request is refused (404/403), nothing of A appears in any of B's responses,
and A's resources are intact afterwards."""

from __future__ import annotations

import re

import httpx
from backend_routes import ROUTES
from backend_testkit import populate_org, register

from backend.services.container import Services

_ID_PLACEHOLDER = re.compile(r"{(\w+)}")


async def test_org_b_cannot_reach_org_a(client: httpx.AsyncClient, services: Services) -> None:
    a = await populate_org(client, services.store, "tenant-a")
    b_owner = await register(client, "tenant-b")
    b_key = (await client.post("/api/v1/org/api-keys", json={"name": "b", "role": "admin"},
                               headers=b_owner.headers)).json()["key"]
    values = a.values()
    markers = a.markers()
    failures = []
    for headers in (b_owner.headers, {"X-API-Key": b_key}):
        for case in ROUTES:
            resp = await client.request(case.method, case.url(values), json=case.body(values) if case.body else None,
                                        headers=headers)
            placeholders = set(_ID_PLACEHOLDER.findall(case.path)) - {"del_carrier"}
            targets_a = bool(placeholders) or case.path.endswith("switch-organization")
            if targets_a and resp.status_code not in (403, 404):
                failures.append(f"{case.method} {case.path}: {resp.status_code} {resp.text[:150]}")
            if not targets_a and resp.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {resp.status_code}")
            leaked = [m for m in markers if m in resp.text]
            if leaked:
                failures.append(f"{case.method} {case.path} leaked {leaked}")
    assert not failures, "\n".join(failures)

    # Nothing of A was changed or removed.
    for path in (f"/api/v1/agents/{a.agent['id']}", f"/api/v1/phone-numbers/{a.number['id']}",
                 f"/api/v1/webhooks/{a.webhook['id']}", f"/api/v1/calls/{a.call_id}"):
        resp = await client.get(path, headers=a.owner.headers)
        assert resp.status_code == 200, path
    agent = (await client.get(f"/api/v1/agents/{a.agent['id']}", headers=a.owner.headers)).json()
    assert agent["version"] == 1 and agent["description"] == ""
    members = (await client.get("/api/v1/org/members", headers=a.owner.headers)).json()
    assert {m["role"] for m in members} == {"owner", "admin", "member"}
    keys = (await client.get("/api/v1/org/api-keys", headers=a.owner.headers)).json()
    assert all(k["revoked_at"] is None for k in keys)
    org = (await client.get("/api/v1/org", headers=a.owner.headers)).json()
    assert org["name"] != "Renamed org"
    creds = (await client.get("/api/v1/org/carrier-credentials", headers=a.owner.headers)).json()
    assert [c["carrier"] for c in creds] == ["twilio"]
    invitations = (await client.get("/api/v1/org/invitations", headers=a.owner.headers)).json()
    assert invitations[0]["revoked_at"] is None
    # A's own API keys cannot be used to read B either.
    b_agents = await client.get("/api/v1/agents", headers={"X-API-Key": a.admin_key})
    assert b_owner.org_id not in b_agents.text


async def test_lists_only_show_own_organisation(client: httpx.AsyncClient, services: Services) -> None:
    a = await populate_org(client, services.store, "lists-a")
    b = await populate_org(client, services.store, "lists-b")
    for path in ("/api/v1/agents", "/api/v1/phone-numbers", "/api/v1/webhooks", "/api/v1/calls",
                 "/api/v1/org/members", "/api/v1/org/api-keys", "/api/v1/org/invitations", "/api/v1/org/audit-log",
                 "/api/v1/calls/export.csv", "/api/v1/analytics/summary?since=2030-01-01&until=2030-01-31"):
        body_a = (await client.get(path, headers=a.owner.headers)).text
        body_b = (await client.get(path, headers=b.owner.headers)).text
        assert not [m for m in b.markers() if m in body_a], path
        assert not [m for m in a.markers() if m in body_b], path
    calls_a = (await client.get("/api/v1/calls", headers=a.owner.headers)).json()["items"]
    assert [c["id"] for c in calls_a] == [a.call_id]
    summary = (await client.get("/api/v1/analytics/summary?since=2030-01-01&until=2030-01-31",
                                headers=b.owner.headers)).json()
    assert summary["total_calls"] == 1
