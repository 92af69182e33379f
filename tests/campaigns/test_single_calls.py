"""POST /api/v1/calls: one outbound call from an API (JWT or API key) under the campaign rules. Each refusal is a
clear 4xx that stores and dials nothing; a retried request with the same Idempotency-Key never dials twice; a
placed call reaches the voice server with its variables."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
from campaign_testkit import (
    Org,
    calls_to,
    contact_number,
    create_campaign,
    dialers,
    human,
    ok,
    provision_org,
    wait_campaign,
)
from fastapi import FastAPI, Request, Response
from pymongo import AsyncMongoClient
from stack_helpers import LocalServer

from backend.campaigns.call_requests import ApiCallRequest, ApiCallRequests
from backend.campaigns.collections import CALL_REQUESTS
from backend.security import signing

pytestmark = pytest.mark.timeout(180)


def _body(org: Org, to: str, **extra: Any) -> dict[str, Any]:
    return {"agent_id": org.agent_id, "from_number": org.numbers["twilio"]["number"], "to_number": to, **extra}


async def _dialled(base: Any, to: str) -> int:
    return sum(1 for c in base.carrier.calls.values() if c.to_number == to)


async def _ended(base: Any, org: Org, call_id: str) -> dict[str, Any]:
    call: dict[str, Any] = {}
    for _ in range(120):  # the call log applies events asynchronously
        detail = await base.http.get(f"{base.backend_url}/api/v1/calls/{call_id}", headers=org.headers)
        call = detail.json() if detail.status_code == 200 else {}
        if call.get("ended_at"):
            break
        await asyncio.sleep(0.5)
    assert call.get("ended_at"), call
    return call


async def test_each_refusal_is_a_clear_4xx_that_dials_nothing(campaign_base: Any) -> None:
    base = campaign_base
    org = await provision_org(base.http, base.backend_url, base.carrier)
    url = f"{base.backend_url}/api/v1/calls"
    listed = contact_number()
    await ok(await base.http.post(f"{base.backend_url}/api/v1/dnc", headers=org.headers,
                                  json={"phone": listed}), 200, 201)
    closed = {"timezone": "UTC", "days": {}}  # no weekday open
    other = await provision_org(base.http, base.backend_url, base.carrier)
    cases = [
        (_body(org, listed), 409, "do_not_call"),
        (_body(org, contact_number(), calling_window=closed), 409, "outside_calling_window"),
        ({**_body(org, contact_number()), "agent_id": other.agent_id}, 422, "validation_error"),
        ({**_body(org, contact_number()), "from_number": other.numbers["twilio"]["number"]}, 422,
         "validation_error"),
        ({**_body(org, contact_number()), "to_number": "12345"}, 422, "validation_error"),
        ({**_body(org, contact_number()), "variables": {"bad.name": "x"}}, 422, "validation_error"),
        ({**_body(org, contact_number()), "webhook_url": "ftp://crm.example.com/x"}, 422, "validation_error"),
        ({**_body(org, contact_number()), "webhook_url": "https://crm.example.com/x", "webhook_id": "w"}, 422,
         "validation_error"),
    ]
    for body, status, code in cases:
        resp = await base.http.post(url, headers=org.headers, json=body)
        assert resp.status_code == status and resp.json()["error"]["code"] == code, (body, resp.text)
        assert await _dialled(base, body["to_number"]) == 0
    # Attacker: a per-call webhook URL aimed at the cloud metadata service or a private address (neither is on the
    # operator's allow-list) is refused before anything is stored or dialled.
    for target in ("http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.7:8080/admin",
                   "https://[fd00::1]/hook"):
        body = _body(org, contact_number(), webhook_url=target)
        resp = await base.http.post(url, headers=org.headers, json=body)
        assert resp.status_code == 422, (target, resp.text)
        detail = resp.json()["error"]["details"][0]
        assert detail["path"] == "body.webhook_url" and "private" in detail["message"], resp.text
        assert await _dialled(base, body["to_number"]) == 0
    anonymous = await base.http.post(url, json=_body(org, contact_number()))
    assert anonymous.status_code == 401
    calls = await ok(await base.http.get(url, headers=org.headers))
    assert calls["items"] == []  # nothing stored

    await ok(await base.http.put(f"{base.backend_url}/api/v1/campaign-settings", headers=org.headers,
                                 json={"max_concurrent_calls": 1}), 200)
    base.carrier.callees[first := contact_number()] = human(8.0)
    placed = await base.http.post(url, headers=org.headers, json=_body(org, first))
    assert placed.status_code == 201, placed.text
    capped = await base.http.post(url, headers=org.headers, json=_body(org, second := contact_number()))
    assert capped.status_code == 429 and capped.json()["error"]["code"] == "org_concurrency_limit", capped.text
    assert await _dialled(base, second) == 0


async def test_an_api_key_places_a_call_once_per_idempotency_key(campaign_stack: Any) -> None:
    base = campaign_stack
    org = await provision_org(base.http, base.backend_url, base.carrier,
                              agent_config={"greeting": "Hello {{first_name}}, this is Acme.",
                                            "max_duration_s": 60})
    key = await ok(await base.http.post(f"{base.backend_url}/api/v1/org/api-keys", headers=org.headers,
                                        json={"name": "crm", "role": "admin"}), 201)
    headers = {"X-API-Key": key["key"], "Idempotency-Key": f"crm-{uuid.uuid4().hex}"}
    # A per-call webhook: subscribed to nothing about calls, it still gets this call's events.
    hook = await ok(await base.http.post(f"{base.backend_url}/api/v1/webhooks", headers=org.headers, json={
        "url": "https://crm.example.com/voice-hooks", "events": ["webhook.test"]}), 201)
    unknown = await base.http.post(f"{base.backend_url}/api/v1/calls", headers=org.headers,
                                   json={**_body(org, contact_number()), "webhook_id": "no-such-hook"})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["path"] == "body.webhook_id"
    to = contact_number()
    base.carrier.callees[to] = human(2.0)
    body = _body(org, to, variables={"first_name": "Priya"}, webhook_id=hook["id"])
    first, again = await asyncio.gather(
        base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers, json=body),
        base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers, json=body))
    statuses = sorted([first.status_code, again.status_code])
    assert statuses in ([200, 201], [201, 409]), (first.text, again.text)  # 409: the twin was still dialling
    created = first.json() if first.status_code == 201 else again.json()
    replay = await base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers, json=body)
    assert replay.status_code == 200 and replay.json()["replayed"] and replay.json()["call_id"] == created["call_id"]
    reused = await base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers,
                                  json=_body(org, contact_number()))
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert await _dialled(base, to) == 1

    call = await _ended(base, org, created["call_id"])
    assert call["direction"] == "outbound" and call["variables"] == {"first_name": "Priya"}, call
    deliveries: list[dict[str, Any]] = []
    for _ in range(40):
        deliveries = await ok(await base.http.get(f"{base.backend_url}/api/v1/webhooks/{hook['id']}/deliveries",
                                                  headers=org.headers))
        if any(d["event"] == "call.ended" for d in deliveries):
            break
        await asyncio.sleep(0.25)
    assert {"call.started", "call.ended"} <= {d["event"] for d in deliveries}, deliveries
    agent_turns = [t["text"] for t in call.get("turns", []) if t["speaker"] == "agent"]
    assert agent_turns and agent_turns[0] == "Hello Priya, this is Acme.", agent_turns


async def test_a_per_call_webhook_url_gets_the_calls_events_signed(campaign_stack: Any) -> None:
    """`webhook_url` (a receiver on loopback, which this stack's operator allow-list permits): the call's events
    arrive there signed with the secret the response returned, and the URL is not one of the org's webhooks."""
    base = campaign_stack
    org = await provision_org(base.http, base.backend_url, base.carrier)
    received: list[tuple[bytes, dict[str, str]]] = []
    app = FastAPI()

    @app.post("/crm/{path:path}")
    async def hook(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    async with LocalServer(app) as crm:
        to = contact_number()
        base.carrier.callees[to] = human(1.0)
        body = _body(org, to, webhook_url=f"{crm.url}/crm/calls?ref=42")
        headers = {**org.headers, "Idempotency-Key": f"crm-{uuid.uuid4().hex}"}
        placed = await ok(await base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers, json=body), 201)
        secret = placed["webhook_secret"]
        assert secret
        replay = await ok(await base.http.post(f"{base.backend_url}/api/v1/calls", headers=headers, json=body), 200)
        assert replay["replayed"] and replay["webhook_secret"] == secret
        await _ended(base, org, placed["call_id"])
        events: dict[str, dict[str, Any]] = {}
        for _ in range(80):
            for raw, hdrs in received:
                assert signing.verify(secret, hdrs["x-voiceagent-signature"], raw), hdrs
                payload = json.loads(raw)
                events[payload["type"]] = payload
            if "call.ended" in events:
                break
            await asyncio.sleep(0.25)
    assert {"call.started", "call.ended"} <= set(events), list(events)
    ended = events["call.ended"]["data"]
    assert placed["call_id"] in (ended.get("id"), ended.get("call_id")), ended
    assert "cost" in ended
    listed = await ok(await base.http.get(f"{base.backend_url}/api/v1/webhooks", headers=org.headers))
    assert listed == [] or all(h["url"] != body["webhook_url"] for h in listed)


async def test_api_calls_and_campaign_calls_share_the_org_cap(campaign_stack: Any) -> None:
    """Org cap 2: two API calls fill it (a third is a 429); a running campaign dials only as they end, and the
    carrier never sees more than 2 of the organisation's calls at once."""
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    await ok(await s.http.put(f"{s.backend_url}/api/v1/campaign-settings", headers=org.headers,
                              json={"max_concurrent_calls": 2}))
    api_numbers = [contact_number() for _ in range(2)]
    for number in api_numbers:
        s.carrier.callees[number] = human(15.0)
    contacts = [contact_number() for _ in range(4)]
    for number in contacts:
        s.carrier.callees[number] = human(0.5)
    url = f"{s.backend_url}/api/v1/calls"
    cid = await create_campaign(s.http, org, contacts, start=False, max_concurrent_calls=2, calls_per_second=20)
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir):
        await asyncio.sleep(3.0)  # the dialer is up (and reaping) while the API calls are live
        for number in api_numbers:
            await ok(await s.http.post(url, headers=org.headers, json=_body(org, number)), 201)
        capped = await s.http.post(url, headers=org.headers, json=_body(org, third := contact_number()))
        assert capped.status_code == 429 and capped.json()["error"]["code"] == "org_concurrency_limit", capped.text
        assert await _dialled(s, third) == 0
        await ok(await s.http.post(f"{s.backend_url}/api/v1/campaigns/{cid}/start", headers=org.headers))
        await wait_campaign(s.http, org, cid, limit_s=150)
    api_calls = calls_to(s.carrier, set(api_numbers))
    campaign_calls = calls_to(s.carrier, set(contacts))
    assert len(campaign_calls) == len(contacts)
    assert s.carrier.max_concurrent(api_calls + campaign_calls) <= 2
    first_api_end = min(c.ended_wall or float("inf") for c in api_calls)
    assert min(c.created_wall for c in campaign_calls) >= first_api_end  # waited for an API call's slot
    # With the slots free again, the API places calls again.
    s.carrier.callees[again := contact_number()] = human(0.5)
    await ok(await s.http.post(url, headers=org.headers, json=_body(org, again)), 201)



async def test_the_api_request_behind_a_call_is_read_once_per_call(campaign_stack: Any) -> None:
    """The webhook fan-out's lookup (backend/campaigns/call_requests.py) against the real database: an API call's
    request is found and then remembered; a call with none is remembered as none; an inbound call is not looked up,
    so a request document carrying its id changes nothing."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    try:
        db = client[campaign_stack.db_name]
        api_call, other_call, inbound_call = (uuid.uuid4().hex for _ in range(3))
        await db[CALL_REQUESTS].insert_many([{"_id": api_call, "org_id": "o", "webhook_id": "wh_1"},
                                             {"_id": inbound_call, "org_id": "o", "webhook_id": "wh_2"}])
        requests = ApiCallRequests(db, size=2)
        assert await requests.of_call(api_call) == ApiCallRequest(call_id=api_call, webhook_id="wh_1")
        assert await requests.of_call(other_call) is None
        await db[CALL_REQUESTS].delete_one({"_id": api_call})  # remembered: not read again
        assert await requests.of_call(api_call) == ApiCallRequest(call_id=api_call, webhook_id="wh_1")
        assert await requests.of_call(inbound_call, inbound=True) is None
        # Two answers kept: the oldest (other_call's) was forgotten, so it is read again.
        await db[CALL_REQUESTS].insert_one({"_id": other_call, "org_id": "o", "webhook_id": None})
        assert await requests.of_call(other_call) == ApiCallRequest(call_id=other_call, webhook_id=None)
    finally:
        await client.close()
