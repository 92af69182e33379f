"""Outgoing webhooks against a real HTTP receiver: HMAC signatures, retries with backoff, the delivery log."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from backend_testkit import backend_settings, call_events, post_events, register, service_headers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.security import signing
from backend.services.container import Services
from backend.services.webhooks import WebhookService


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> failures left

    async def wait_for(self, count: int, path: str, within_s: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            got = [r for r in self.received if r["path"] == path]
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"only {[r['path'] for r in self.received]} arrived")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    port = _free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}")

    async def hook(request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        state.received.append({"path": path, "body": body, "headers": dict(request.headers), "at": time.monotonic()})
        if state.fail_first.get(path, 0) > 0:
            state.fail_first[path] -= 1
            return Response(status_code=503)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    yield state
    server.should_exit = True
    await task


async def test_signed_deliveries_for_call_events(client: httpx.AsyncClient, receiver: Receiver) -> None:
    owner = await register(client, "hooks")
    path = f"/calls-{uuid.uuid4().hex[:6]}"
    created = await client.post("/api/v1/webhooks", json={"url": receiver.url + path,
                                                          "events": ["call.*"]}, headers=owner.headers)
    assert created.status_code == 201
    hook = created.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    fetched = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=owner.headers)).json()
    assert fetched["secret"] is None and secret not in str(fetched)
    call_id, events = call_events(owner.org_id, turns=2)
    await post_events(client, events)
    got = await receiver.wait_for(3, path)
    types = sorted(json.loads(r["body"])["type"] for r in got)
    assert types == ["call.ended", "call.started", "call.transcript"]
    for r in got:
        headers = r["headers"]
        assert signing.verify(secret, headers["x-voiceagent-signature"], r["body"])
        assert not signing.verify("whsec_wrong", headers["x-voiceagent-signature"], r["body"])
        assert not signing.verify(secret, headers["x-voiceagent-signature"], r["body"] + b" ")
        payload = json.loads(r["body"])
        assert payload["organization_id"] == owner.org_id and headers["x-voiceagent-event"] == payload["type"]
    transcript = next(json.loads(r["body"]) for r in got if b"call.transcript" in r["body"])
    assert [t["turn_index"] for t in transcript["data"]["turns"]] == [0, 1]
    # Re-sending the same events queues nothing new.
    await post_events(client, events)
    await asyncio.sleep(0.5)
    assert len([r for r in receiver.received if r["path"] == path]) == 3
    deliveries = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=owner.headers)).json()
    assert len(deliveries) == 3 and all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries)
    assert all(d["response_status"] == 204 for d in deliveries)


async def test_failed_deliveries_are_retried_with_backoff(client: httpx.AsyncClient, receiver: Receiver) -> None:
    owner = await register(client, "retry")
    path = f"/flaky-{uuid.uuid4().hex[:6]}"
    receiver.fail_first[path] = 2
    hook = (await client.post("/api/v1/webhooks", json={"url": receiver.url + path, "events": ["campaign.*"]},
                              headers=owner.headers)).json()
    event = {"event_id": uuid.uuid4().hex, "org_id": owner.org_id, "type": "campaign.completed", "data": {"n": 1}}
    await client.post("/internal/v1/org-events", json=event, headers=service_headers("dialer"))
    got = await receiver.wait_for(3, path)
    gaps = [got[i + 1]["at"] - got[i]["at"] for i in range(2)]
    # base 0.2 s doubling, with ±20 % jitter: about 0.2 s then 0.4 s.
    assert 0.1 <= gaps[0] <= 1.5 and gaps[1] >= 0.25, gaps
    assert {r["headers"]["x-voiceagent-delivery"] for r in got} == {f"{hook['id']}:{event['event_id']}"}
    await asyncio.sleep(0.2)
    deliveries = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=owner.headers)).json()
    assert deliveries[0]["status"] == "delivered" and deliveries[0]["attempts"] == 3


async def test_gives_up_after_max_attempts_and_test_endpoint(
    client: httpx.AsyncClient, receiver: Receiver, services: Services
) -> None:
    owner = await register(client, "giveup")
    path = f"/down-{uuid.uuid4().hex[:6]}"
    receiver.fail_first[path] = 100
    hook = (await client.post("/api/v1/webhooks", json={"url": receiver.url + path, "events": ["webhook.test"]},
                              headers=owner.headers)).json()
    queued = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=owner.headers)
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    services.settings.webhook_max_attempts = 3
    try:
        await receiver.wait_for(3, path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            deliveries = (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=owner.headers)).json()
            if deliveries[0]["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        assert deliveries[0]["status"] == "failed" and deliveries[0]["attempts"] == 3
        assert deliveries[0]["error"] == "HTTP 503"
    finally:
        services.settings.webhook_max_attempts = 8


async def test_webhook_crud_and_private_targets(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "crud")
    bad = await client.post("/api/v1/webhooks", json={"url": "ftp://example.com", "events": ["call.ended"]},
                            headers=owner.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "body.url"
    bad_events = await client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["Call Ended"]},
                                   headers=owner.headers)
    assert bad_events.status_code == 422
    hook = (await client.post("/api/v1/webhooks", json={"url": "https://example.com/h", "events": ["call.ended"]},
                              headers=owner.headers)).json()
    patched = await client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False, "events": ["*"]},
                                 headers=owner.headers)
    assert patched.json()["active"] is False and patched.json()["events"] == ["*"]
    assert (await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=owner.headers)).status_code == 404

    # With the production default, loopback and private targets are refused.
    strict = WebhookService(services.db, backend_settings(egress_allowed_hosts=[]),
                            services.webhooks._box, services.audit)
    from backend.errors import ApiError
    from backend.models.webhooks import WebhookCreate
    from backend.security.permissions import Principal, Role

    principal = Principal(org_id=owner.org_id, role=Role.owner, user_id=owner.user_id)
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://localhost:8000/x", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(ApiError) as info:
            await strict.create(principal, WebhookCreate(url=url, events=["call.ended"]))
        assert info.value.status == 422
