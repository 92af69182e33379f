"""Finding 3: tenant-supplied URLs must not reach the platform's own network.

Webhook tools, outgoing webhooks and custom AI endpoints all go through one egress guard (core/egress.py). The
attacker names internal addresses directly (metadata service, loopback in IPv6 forms), through a DNS name that
rebinds to loopback after the check, and through a custom LLM endpoint; an internal listener on loopback that is
not on the operator's allow-list must never see a request."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_testkit import register
from security_testkit import Listener, voice_app, warm_up_call

from core.agent_config import AgentConfig, EndpointOptions, TTSConfig, WebhookTool
from core.call_events import ResolvedAgent
from pipelines.tools import ToolContext, build_tools
from voice_server.answering import IncomingCall, Resolution, prepare_call
from voice_server.state import VoiceApp

PUBLIC_ADDRESS = "93.184.216.34"  # what the attacker's DNS answers first (a public address)


def tool(url: str) -> dict[str, Any]:
    return {"name": "lookup", "description": "Looks something up", "url": url, "method": "GET"}


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:8000/internal/v1/agents",
    "http://[::ffff:127.0.0.1]:9000/recordings",
    "http://10.0.0.5/",
    "http://localhost:27017/",
])
async def test_an_agent_cannot_save_a_tool_aimed_at_an_internal_address(client: httpx.AsyncClient, url: str) -> None:
    owner = await register(client, "ssrf")
    resp = await client.post("/api/v1/agents", json={"name": "ssrf", "config": {"tools": [tool(url)]}},
                             headers=owner.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["path"] == "body.config.tools[0].url"


async def test_custom_endpoints_are_refused_on_internal_addresses_even_when_allowed(client: httpx.AsyncClient) -> None:
    owner = await register(client, "ssrf-endpoint")
    await client.patch("/api/v1/org", json={"allow_custom_endpoints": True}, headers=owner.headers)
    for config in ({"llm": {"endpoint": {"base_url": "http://127.0.0.1:8000/v1"}}},
                   {"tts": {"fallbacks": [{"base_url": "http://169.254.169.254"}]}},
                   {"stt": {"endpoint": {"base_url": "10.1.2.3:50051"}}}):
        resp = await client.post("/api/v1/agents", json={"name": "ssrf", "config": config}, headers=owner.headers)
        assert resp.status_code == 422, (config, resp.text)


async def _tool_result(voice: VoiceApp, url: str) -> dict[str, Any]:
    """Runs the agent's webhook tool the way a call does, with the voice server's client for tenants' URLs."""
    class Sink:
        def tool(self, event: Any) -> None: ...

    class Params:
        arguments: dict[str, Any] = {"q": "x"}
        results: list[Any] = []

        class llm:  # noqa: N801 (the attribute Pipecat's params carry)
            @staticmethod
            async def push_frame(frame: Any) -> None: ...

        async def result_callback(self, result: Any, *, properties: Any = None) -> None:
            self.results.append(result)

    agent = AgentConfig(tools=[WebhookTool(name="lookup", description="d", url=url, method="GET",  # type: ignore[arg-type]
                                           filler_phrase=None)], enable_end_call=False)
    # The client the voice server hands to a call's tools (before the fix: its one shared client).
    services = voice.call_services
    ctx = ToolContext(agent=agent, call_id="c1", control=None, events=Sink(),  # type: ignore[arg-type]
                      http=getattr(services, "tenant_http", None) or services.http)
    params = Params()
    await build_tools(ctx)[0].handler(params)  # type: ignore[arg-type]
    return dict(params.results[0])


async def test_a_tool_call_at_run_time_reaches_only_allowed_or_public_addresses(
        tmp_path: Path, allowed_listener: Listener, internal_listener: Listener) -> None:
    voice = voice_app(tmp_path, platform_llm="http://127.0.0.1:9/v1", allowed=[f"127.0.0.1:{allowed_listener.port}"])
    try:
        before = len(internal_listener.requests)
        refused = await _tool_result(voice, f"{internal_listener.url}/internal")
        assert "error" in refused and len(internal_listener.requests) == before, refused
        allowed = await _tool_result(voice, f"{allowed_listener.url}/ok")
        assert allowed.get("status") == 200, allowed
    finally:
        await voice.http.aclose()


async def test_a_custom_llm_endpoint_cannot_reach_an_internal_address(
        tmp_path: Path, allowed_listener: Listener, internal_listener: Listener) -> None:
    voice = voice_app(tmp_path, platform_llm="http://127.0.0.1:9/v1", allowed=[f"127.0.0.1:{allowed_listener.port}"])
    before = len(internal_listener.requests)
    await warm_up_call(voice, f"{internal_listener.url}/v1")
    assert len(internal_listener.requests) == before, internal_listener.requests[before:]


async def test_a_custom_tts_endpoint_cannot_reach_an_internal_address_through_the_prepared_greeting(
        tmp_path: Path, internal_listener: Listener) -> None:
    """At answer time the voice server synthesises the greeting before the media socket opens
    (voice_server/answering.py). That request went to the agent's own TTS endpoint with the platform's unguarded
    client: an agent could make the voice server POST to any internal address, and where it answered 200, the
    answer was played, and recorded, as the greeting's audio. Only the platform's TTS server is asked ahead now;
    an agent's own endpoint is reached in the call, through the egress guard (pipelines/tts_chain.py)."""
    voice = voice_app(tmp_path, platform_llm="http://127.0.0.1:9/v1")
    agent = ResolvedAgent(org_id="o1", agent_id="a1", agent_version=1, agent_name="tenant", config=AgentConfig(
        greeting="Hello there.", tts=TTSConfig(endpoint=EndpointOptions(base_url=f"{internal_listener.url}/steal"))))
    before = len(internal_listener.requests)
    try:
        prepare_call(voice, IncomingCall("twilio", "CA-ssrf", "+14155550100", "+14155550101"),
                     Resolution("ok", "call-ssrf", "inbound", agent=agent), 8000)
        prepared = voice.prepared.take("call-ssrf")
        assert prepared is not None
        await asyncio.wait_for(asyncio.gather(*prepared.tasks, return_exceptions=True), 10)
    finally:
        await voice.http.aclose()
    assert [r["path"] for r in internal_listener.requests[before:]] == [], "the greeting reached the internal listener"


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> str:
    """The attacker's DNS for one name: a public address on the first lookup, loopback on every later one (what a
    rebinding DNS server does with a zero TTL). Every other name resolves normally."""
    name = f"rebind-{uuid.uuid4().hex[:8]}.attacker.test"
    real = socket.getaddrinfo
    lookups = {"n": 0}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != name:  # anyio passes IDNA-encoded bytes
            return real(host, port, *args, **kwargs)
        lookups["n"] += 1
        address = PUBLIC_ADDRESS if lookups["n"] == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return name


async def test_an_outgoing_webhook_cannot_be_rebound_to_an_internal_address(
        client: httpx.AsyncClient, internal_listener: Listener, rebinding_dns: str) -> None:
    owner = await register(client, "rebind")
    url = f"http://{rebinding_dns}:{internal_listener.port}/steal"
    created = await client.post("/api/v1/webhooks", json={"url": url, "events": ["webhook.test"]}, headers=owner.headers)
    assert created.status_code == 201, created.text
    hook = created.json()
    before = len(internal_listener.requests)
    assert (await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=owner.headers)).status_code == 202
    deadline = time.monotonic() + 30
    status = "pending"
    while time.monotonic() < deadline and len(internal_listener.requests) == before:
        deliveries = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=owner.headers)).json()
        status = deliveries[0]["status"] if deliveries else "pending"
        if status == "failed":
            break
        await asyncio.sleep(0.2)
    assert [r["path"] for r in internal_listener.requests[before:]] == [], "the webhook reached the internal listener"
    assert status == "failed"
