"""The internal API: service tokens only; agent resolution by number and id (with decrypted carrier credentials);
outbound call registration and context; org events; recording registration."""

from __future__ import annotations

import os
import uuid

import httpx
from backend_testkit import create_agent, post_events, register, service_headers, unique_number
from jose import jwt

from core.call_events import OutboundCallContext, ResolvedAgent
from core.service_auth import SERVICE_AUDIENCE, mint_service_token
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.simulator import CarrierAccount


async def test_internal_api_requires_a_service_token(client: httpx.AsyncClient) -> None:
    owner = await register(client, "svc")
    key = (await client.post("/api/v1/org/api-keys", json={"name": "k", "role": "admin"},
                             headers=owner.headers)).json()["key"]
    secret = os.environ["SERVICE_TOKEN_SECRET"]
    expired = jwt.encode({"sub": "voice-server", "aud": SERVICE_AUDIENCE, "scope": "internal", "iat": 1, "exp": 2},
                         secret, algorithm="HS256")
    wrong_secret = mint_service_token("another-secret-of-enough-length", "voice-server")
    not_internal = jwt.encode({"sub": "x", "aud": SERVICE_AUDIENCE, "exp": 4102444800}, secret, algorithm="HS256")
    for headers in ({}, owner.headers, {"Authorization": f"Bearer {key}"}, {"X-API-Key": key},
                    {"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {wrong_secret}"},
                    {"Authorization": f"Bearer {not_internal}"}):
        for method, path in (("GET", "/internal/v1/agents/by-number/+14155550123"), ("GET", "/internal/v1/agents/x"),
                             ("POST", "/internal/v1/calls/events"), ("GET", "/internal/v1/calls/x/context"),
                             ("POST", "/internal/v1/calls"), ("POST", "/internal/v1/org-events")):
            resp = await client.request(method, path, json={}, headers=headers)
            assert resp.status_code == 401, (method, path, headers, resp.status_code)


async def test_agent_resolution(client: httpx.AsyncClient, fake_carrier: FakeCarrier) -> None:
    owner = await register(client, "resolve")
    agent = await create_agent(client, owner, "Inbound")
    number = unique_number()
    account = CarrierAccount("vobiz", "MA_RESOLVE_0001", "vobiz-token-1", numbers={number})
    fake_carrier.accounts[("vobiz", account.account_id)] = account
    listed = await client.post("/api/v1/phone-numbers", headers=owner.headers,
                               json={"number": number, "carrier": "vobiz", "agent_id": agent["id"]})
    await client.put("/api/v1/org/carrier-credentials/vobiz", json={
        "account_id": "MA_RESOLVE_0001", "auth_token": "vobiz-token-1"}, headers=owner.headers)
    verified = await client.post(f"/api/v1/phone-numbers/{listed.json()['id']}/verify", headers=owner.headers)
    assert verified.status_code == 200 and verified.json()["verified_at"], verified.text
    resp = await client.get(f"/internal/v1/agents/by-number/{number}", headers=service_headers())
    assert resp.status_code == 200, resp.text
    resolved = ResolvedAgent.model_validate(resp.json())
    assert resolved.org_id == owner.org_id and resolved.agent_id == agent["id"] and resolved.agent_version == 1
    assert resolved.config.variables == {"business": "Test Co"}
    assert resolved.carrier_credentials is not None
    assert resolved.carrier_credentials.auth_token == "vobiz-token-1"
    assert resolved.carrier_credentials.api_base_url == fake_carrier.base_url  # the operator's, not the tenant's
    by_id = ResolvedAgent.model_validate((await client.get(f"/internal/v1/agents/{agent['id']}",
                                                           headers=service_headers())).json())
    assert by_id.agent_name == "Inbound" and by_id.carrier_credentials is None
    unknown = await client.get("/internal/v1/agents/by-number/+14155550000", headers=service_headers())
    assert unknown.status_code == 404
    bad = await client.get("/internal/v1/agents/by-number/12345", headers=service_headers())
    assert bad.status_code == 422


async def test_outbound_call_registration_and_context(client: httpx.AsyncClient) -> None:
    owner = await register(client, "dialer")
    agent = await create_agent(client, owner, "Outbound")
    caller_id = unique_number()
    await client.post("/api/v1/phone-numbers", json={"number": caller_id, "carrier": "twilio"}, headers=owner.headers)
    call_id = "dial" + uuid.uuid4().hex
    body = {"org_id": owner.org_id, "agent_id": agent["id"], "from_number": caller_id, "to_number": "+14155550177",
            "call_id": call_id, "campaign_id": "camp-9", "contact_id": "contact-1", "variables": {"first_name": "Ada"}}
    created = await client.post("/internal/v1/calls", json=body, headers=service_headers("dialer"))
    assert created.status_code == 201, created.text
    context = OutboundCallContext.model_validate(created.json())
    assert context.call_id == call_id and context.variables == {"first_name": "Ada"}
    assert context.agent.phone_number == caller_id
    again = await client.post("/internal/v1/calls", json=body, headers=service_headers("dialer"))
    assert again.status_code == 201 and again.json()["call_id"] == call_id
    clash = await client.post("/internal/v1/calls", json={**body, "to_number": "+14155550178"},
                              headers=service_headers("dialer"))
    assert clash.status_code == 409
    # The agent changes during the campaign: the placed call keeps the version it was placed with.
    await client.put(f"/api/v1/agents/{agent['id']}", json={"config": {"greeting": "Changed"}}, headers=owner.headers)
    fetched = await client.get(f"/internal/v1/calls/{call_id}/context", headers=service_headers())
    assert fetched.status_code == 200
    assert fetched.json()["agent"]["agent_version"] == 1
    assert fetched.json()["agent"]["config"]["greeting"] == "Hello from {{business}}"
    listed = (await client.get("/api/v1/calls", headers=owner.headers)).json()["items"]
    assert listed[0]["id"] == call_id and listed[0]["status"] == "queued"
    # The carrier says busy: the dialer reports the end without a start.
    await post_events(client, [{"type": "call.ended", "event_id": uuid.uuid4().hex, "call_id": call_id,
                                "end_reason": "busy", "duration_s": 0}])
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["status"] == "busy" and detail["answered"] is False and detail["campaign_id"] == "camp-9"
    other = await register(client, "dialer-b")
    foreign = await client.post("/internal/v1/calls", json={**body, "org_id": other.org_id, "call_id": None},
                                headers=service_headers("dialer"))
    assert foreign.status_code == 422
    assert (await client.get("/internal/v1/calls/nope/context", headers=service_headers())).status_code == 404


async def test_org_events_are_idempotent(client: httpx.AsyncClient) -> None:
    owner = await register(client, "orgev")
    event = {"event_id": uuid.uuid4().hex, "org_id": owner.org_id, "type": "campaign.completed", "data": {"id": "c1"}}
    first = await client.post("/internal/v1/org-events", json=event, headers=service_headers("dialer"))
    assert first.json() == {"accepted": True, "duplicate": False}
    second = await client.post("/internal/v1/org-events", json=event, headers=service_headers("dialer"))
    assert second.json() == {"accepted": False, "duplicate": True}
    bad = await client.post("/internal/v1/org-events", json={**event, "type": "call.ended"},
                            headers=service_headers("dialer"))
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "body.type"
