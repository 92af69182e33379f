"""Organisation secrets: write-only API (values never come back), audited, rotatable, encrypted at rest, and
referenced by name from agents: an unknown name is a 422 that saves nothing, and the internal API hands the voice
server exactly the secrets a call's agent names."""

from __future__ import annotations

import httpx
from backend_testkit import AGENT_CONFIG, register, service_headers

from backend.db.collections import ORG_SECRETS
from backend.services.container import Services
from core.call_events import ResolvedAgent

KEY = "sk-live-0123456789abcdef"
HEADERS = '{"Authorization": "Bearer crm-token-42", "X-Clinic": "north"}'


async def test_secrets_are_write_only_audited_rotatable_and_encrypted(client: httpx.AsyncClient,
                                                                      services: Services) -> None:
    owner = await register(client, "secrets")
    created = await client.put("/api/v1/org/secrets/llm-key", json={"value": KEY}, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and KEY not in created.text
    rotated = await client.put("/api/v1/org/secrets/llm-key", json={"value": KEY + "-v2"}, headers=owner.headers)
    assert rotated.status_code == 200 and rotated.json()["version"] == 2
    assert rotated.json()["created_at"] == created.json()["created_at"]
    listed = await client.get("/api/v1/org/secrets", headers=owner.headers)
    assert [s["name"] for s in listed.json()] == ["llm-key"] and KEY not in listed.text
    assert listed.json()[0]["value_masked"] == "••••••••"

    stored = await services.db[ORG_SECRETS].find_one({"_id": f"{owner.org_id}:llm-key"})
    assert stored is not None and KEY not in str(stored)  # AES-GCM at rest

    audit = (await client.get("/api/v1/org/audit-log", headers=owner.headers)).json()
    actions = [a["action"] for a in audit if a["target_type"] == "secret"]
    assert actions[:2] == ["secret.rotated", "secret.created"] and KEY not in str(audit)

    assert (await client.delete("/api/v1/org/secrets/llm-key", headers=owner.headers)).status_code == 204
    assert (await client.delete("/api/v1/org/secrets/llm-key", headers=owner.headers)).status_code == 404
    assert (await client.get("/api/v1/org/secrets", headers=owner.headers)).json() == []


async def test_bad_secret_input_is_refused(client: httpx.AsyncClient) -> None:
    owner = await register(client, "badsecrets")
    for name, body in (("has.dot", {"value": "x"}), ("ok", {"value": ""}), ("ok", {}), ("-lead", {"value": "x"}),
                       ("ok", {"value": "x" * 8193})):
        resp = await client.put(f"/api/v1/org/secrets/{name}", json=body, headers=owner.headers)
        assert resp.status_code == 422, (name, resp.status_code)
    assert (await client.get("/api/v1/org/secrets", headers=owner.headers)).json() == []
    anonymous = await client.put("/api/v1/org/secrets/ok", json={"value": "x"})
    assert anonymous.status_code == 401


def _config_with_refs(key_ref: str, fallback_ref: str, headers_ref: str) -> dict[str, object]:
    return {
        **AGENT_CONFIG,
        "llm": {"endpoint": {"api_key_ref": key_ref},
                "fallbacks": [{"base_url": "https://llm.example.com/v1", "api_key_ref": fallback_ref}]},
        "tools": [{"name": "crm", "description": "Look up the caller", "url": "https://crm.example.com/lookup",
                   "headers_secret_ref": headers_ref}],
    }


async def test_agents_refer_to_secrets_by_name_and_calls_get_only_theirs(client: httpx.AsyncClient) -> None:
    owner = await register(client, "secretrefs")
    other = await register(client, "othersecrets")
    allowed = await client.patch("/api/v1/org", json={"name": "secretrefs org", "allow_custom_endpoints": True},
                                 headers=owner.headers)
    assert allowed.status_code == 200, allowed.text  # the fallback below is the organisation's own endpoint
    for name, value in (("primary", KEY), ("fallback", "fb-key"), ("crm-headers", HEADERS), ("unused", "nope")):
        await client.put(f"/api/v1/org/secrets/{name}", json={"value": value}, headers=owner.headers)
    await client.put("/api/v1/org/secrets/only-other", json={"value": "theirs"}, headers=other.headers)

    unknown = await client.post("/api/v1/agents", json={"name": "A", "config": _config_with_refs(
        "primary", "only-other", "crm-headers")}, headers=owner.headers)
    assert unknown.status_code == 422, unknown.text
    paths = [d["path"] for d in unknown.json()["error"]["details"]]
    assert paths == ["body.config.llm.fallbacks[0].api_key_ref"], paths
    not_headers = await client.post("/api/v1/agents", json={"name": "A", "config": _config_with_refs(
        "primary", "fallback", "unused")}, headers=owner.headers)
    assert not_headers.status_code == 422 and "JSON object" in not_headers.text
    assert (await client.get("/api/v1/agents", headers=owner.headers)).json() == []  # nothing saved

    agent = await client.post("/api/v1/agents", json={"name": "A", "config": _config_with_refs(
        "primary", "fallback", "crm-headers")}, headers=owner.headers)
    assert agent.status_code == 201, agent.text
    assert KEY not in agent.text
    bad_edit = await client.put(f"/api/v1/agents/{agent.json()['id']}", json={"config": _config_with_refs(
        "primary", "missing", "crm-headers")}, headers=owner.headers)
    assert bad_edit.status_code == 422
    assert (await client.get(f"/api/v1/agents/{agent.json()['id']}", headers=owner.headers)).json()["version"] == 1

    resp = await client.get(f"/internal/v1/agents/{agent.json()['id']}", headers=service_headers())
    resolved = ResolvedAgent.model_validate(resp.json())
    assert resolved.secret_values() == {"primary": KEY, "fallback": "fb-key", "crm-headers": HEADERS}
    assert KEY not in repr(resolved)  # never in a log line

    await client.put("/api/v1/org/secrets/primary", json={"value": "rotated"}, headers=owner.headers)
    again = ResolvedAgent.model_validate((await client.get(f"/internal/v1/agents/{agent.json()['id']}",
                                                           headers=service_headers())).json())
    assert again.secret_values()["primary"] == "rotated"  # the next call uses the new value


async def test_a_context_webhook_may_not_name_an_internal_address(client: httpx.AsyncClient) -> None:
    """Attacker: the pre-call lookup runs before every call, server-side; aimed at the metadata service or the
    platform's private network it would read internal data into the prompt. Refused on save (and by the voice server's
    egress guard at call time)."""
    owner = await register(client, "ctxssrf")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/crm", "http://[::ffff:10.0.0.1]/"):
        resp = await client.post("/api/v1/agents", headers=owner.headers, json={
            "name": "A", "config": {**AGENT_CONFIG, "context_webhook": {"url": url}}})
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["error"]["details"][0]["path"] == "body.config.context_webhook.url"
    assert (await client.get("/api/v1/agents", headers=owner.headers)).json() == []
