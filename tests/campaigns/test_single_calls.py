"""POST /api/v1/calls: one outbound call from an API (JWT or API key) under the campaign rules. Each refusal is a
clear 4xx that stores and dials nothing; a retried request with the same Idempotency-Key never dials twice; a
placed call reaches the voice server with its variables."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from campaign_testkit import Org, contact_number, human, ok, provision_org

pytestmark = pytest.mark.timeout(180)


def _body(org: Org, to: str, **extra: Any) -> dict[str, Any]:
    return {"agent_id": org.agent_id, "from_number": org.numbers["twilio"]["number"], "to_number": to, **extra}


async def _dialled(base: Any, to: str) -> int:
    return sum(1 for c in base.carrier.calls.values() if c.to_number == to)


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
    ]
    for body, status, code in cases:
        resp = await base.http.post(url, headers=org.headers, json=body)
        assert resp.status_code == status and resp.json()["error"]["code"] == code, (body, resp.text)
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

    call: dict[str, Any] = {}
    for _ in range(120):  # the call log applies events asynchronously
        detail = await base.http.get(f"{base.backend_url}/api/v1/calls/{created['call_id']}", headers=org.headers)
        call = detail.json() if detail.status_code == 200 else {}
        if call.get("ended_at"):
            break
        await asyncio.sleep(0.5)
    assert call.get("ended_at"), call
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
