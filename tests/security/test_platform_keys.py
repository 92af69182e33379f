"""Finding 2: the platform's LLM key must never go to a tenant's URL.

The attacker points an agent's LLM endpoint at a listener they run and answers a call: the voice server's warm-up
(fired as soon as a call is answered) and every completion must reach it without the platform's key. Custom
endpoints need the organisation's setting (off by default), and switching it off removes them from calls."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from backend_testkit import register, service_headers
from security_testkit import Listener, voice_app, warm_up_call

from core.service_auth import verify_service_token

PLATFORM_KEY = "sk-platform-secret-never-for-tenants"


async def test_a_tenant_cannot_point_an_agent_at_its_own_endpoint_by_default(client: httpx.AsyncClient) -> None:
    owner = await register(client, "keythief")
    config = {"llm": {"endpoint": {"base_url": "https://llm.attacker.example/v1"}}}
    resp = await client.post("/api/v1/agents", json={"name": "thief", "config": config}, headers=owner.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["path"] == "body.config.llm.endpoint.base_url"


async def test_switching_custom_endpoints_off_removes_them_from_calls(client: httpx.AsyncClient) -> None:
    owner = await register(client, "switch")
    on = await client.patch("/api/v1/org", json={"allow_custom_endpoints": True}, headers=owner.headers)
    assert on.status_code == 200 and on.json()["allow_custom_endpoints"] is True, on.text
    config = {"llm": {"endpoint": {"base_url": "https://llm.example.com/v1"},
                      "fallbacks": [{"base_url": "https://llm2.example.com/v1"}, {"model": "other"}]}}
    agent = await client.post("/api/v1/agents", json={"name": "own llm", "config": config}, headers=owner.headers)
    assert agent.status_code == 201, agent.text
    off = await client.patch("/api/v1/org", json={"allow_custom_endpoints": False}, headers=owner.headers)
    assert off.status_code == 200, off.text
    resolved = await client.get(f"/internal/v1/agents/{agent.json()['id']}", headers=service_headers())
    assert resolved.status_code == 200, resolved.text
    llm = resolved.json()["config"]["llm"]
    assert llm["endpoint"]["base_url"] is None
    assert [fb.get("base_url") for fb in llm["fallbacks"]] == [None]


async def test_the_call_warm_up_never_sends_the_platform_key_to_a_tenant_endpoint(
        tmp_path: Path, allowed_listener: Listener, internal_listener: Listener) -> None:
    # The attacker's endpoint: allow-listed here so the request is made at all (it stands for a public host).
    voice = voice_app(tmp_path, platform_llm=f"{internal_listener.url}/v1", llm_api_key=PLATFORM_KEY,
                      allowed=[f"127.0.0.1:{allowed_listener.port}"])
    before = len(allowed_listener.requests)
    await warm_up_call(voice, f"{allowed_listener.url}/v1")
    seen = allowed_listener.requests[before:]
    assert seen, "the warm-up did not reach the tenant's endpoint at all"
    assert all(PLATFORM_KEY not in r.get("authorization", "") for r in seen), seen


async def test_the_platform_endpoint_still_gets_the_platform_key(tmp_path: Path, internal_listener: Listener) -> None:
    voice = voice_app(tmp_path, platform_llm=f"{internal_listener.url}/v1", llm_api_key=PLATFORM_KEY)
    before = len(internal_listener.requests)
    await warm_up_call(voice, None)
    assert any(r.get("authorization") == f"Bearer {PLATFORM_KEY}" for r in internal_listener.requests[before:])


async def test_a_tenant_endpoint_never_gets_a_service_token(tmp_path: Path, allowed_listener: Listener,
                                                            internal_listener: Listener) -> None:
    """With the embedded LLM (no LLM_API_KEY) the platform's endpoint gets service tokens, which open every speech
    server: a tenant's endpoint must not receive one either."""
    voice = voice_app(tmp_path, platform_llm=f"{internal_listener.url}/v1",
                      allowed=[f"127.0.0.1:{allowed_listener.port}"])
    before_tenant, before_platform = len(allowed_listener.requests), len(internal_listener.requests)
    await warm_up_call(voice, f"{allowed_listener.url}/v1")
    voice = voice_app(tmp_path, platform_llm=f"{internal_listener.url}/v1")
    await warm_up_call(voice, None)
    tenant = allowed_listener.requests[before_tenant:]
    platform = internal_listener.requests[before_platform:]
    assert tenant and platform
    assert all(r.get("authorization", "") in ("", "Bearer none") for r in tenant), tenant
    secret = os.environ["SERVICE_TOKEN_SECRET"]
    assert any(verify_service_token(secret, r.get("authorization", "")[7:]) == "voice-server" for r in platform)
