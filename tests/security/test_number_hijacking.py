"""Finding 5: any tenant could claim any E.164 number (first come wins) and receive its real calls, and a 409 told
an attacker that a number belonged to someone. A number now routes calls only once the carrier's API, asked with
the organisation's own credentials, confirms its account owns the number (the fake carrier serves Twilio's
IncomingPhoneNumbers and Vobiz's Number resources)."""

from __future__ import annotations

import secrets
import uuid

import httpx
from backend_testkit import Account, create_agent, register, service_headers

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.simulator import CarrierAccount


def victims_number() -> str:
    return f"+1415{uuid.uuid4().int % 10**7:07d}"


async def with_carrier_account(client: httpx.AsyncClient, fake: FakeCarrier, org: Account,
                               numbers: set[str]) -> CarrierAccount:
    """The organisation's real Twilio account (at the fake carrier), owning `numbers`, and its credentials."""
    account = CarrierAccount("twilio", "AC" + secrets.token_hex(16), secrets.token_hex(16))
    account.numbers = set(numbers)  # assigned, so this also runs against the code before the fix
    fake.accounts[("twilio", account.account_id)] = account
    resp = await client.put("/api/v1/org/carrier-credentials/twilio", headers=org.headers,
                            json={"account_id": account.account_id, "auth_token": account.auth_token})
    assert resp.status_code == 200, resp.text
    return account


async def routed_org(client: httpx.AsyncClient, number: str) -> str | None:
    resp = await client.get(f"/internal/v1/agents/by-number/{number}", headers=service_headers())
    return str(resp.json()["org_id"]) if resp.status_code == 200 else None


async def test_a_number_the_tenants_account_does_not_own_never_routes_calls(
        client: httpx.AsyncClient, fake_carrier: FakeCarrier) -> None:
    attacker = await register(client, "hijacker")
    await with_carrier_account(client, fake_carrier, attacker, numbers=set())  # a real account, not the number's
    agent = await create_agent(client, attacker)
    number = victims_number()
    claimed = await client.post("/api/v1/phone-numbers", headers=attacker.headers,
                                json={"number": number, "carrier": "twilio", "agent_id": agent["id"]})
    assert claimed.status_code == 201, claimed.text
    assert await routed_org(client, number) is None, "an unverified claim receives the number's calls"
    verify = await client.post(f"/api/v1/phone-numbers/{claimed.json()['id']}/verify", headers=attacker.headers)
    assert verify.status_code == 422 and verify.json()["error"]["code"] == "number_not_owned", verify.text


async def test_a_squatter_neither_blocks_the_real_owner_nor_learns_who_it_is(
        client: httpx.AsyncClient, fake_carrier: FakeCarrier) -> None:
    number = victims_number()
    squatter = await register(client, "squatter")
    first = await client.post("/api/v1/phone-numbers", headers=squatter.headers,
                              json={"number": number, "carrier": "twilio"})
    assert first.status_code == 201, first.text

    owner = await register(client, "owner")
    await with_carrier_account(client, fake_carrier, owner, numbers={number})
    agent = await create_agent(client, owner)
    mine = await client.post("/api/v1/phone-numbers", headers=owner.headers,
                             json={"number": number, "carrier": "twilio", "agent_id": agent["id"]})
    assert mine.status_code == 201 and mine.json()["verified_at"], mine.text
    assert await routed_org(client, number) == owner.org_id

    # Another tenant trying the (now verified) number learns nothing: the same answer as for any number.
    prober = await register(client, "prober")
    probe = await client.post("/api/v1/phone-numbers", headers=prober.headers,
                              json={"number": number, "carrier": "twilio"})
    assert probe.status_code == 201 and probe.json()["verified_at"] is None, probe.text
    assert owner.org_id not in probe.text and "taken" not in probe.text
    assert await routed_org(client, number) == owner.org_id


async def test_a_tenant_cannot_choose_where_its_carrier_credentials_are_sent(client: httpx.AsyncClient) -> None:
    tenant = await register(client, "redirector")
    resp = await client.put("/api/v1/org/carrier-credentials/twilio", headers=tenant.headers,
                            json={"account_id": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16),
                                  "api_base_url": "http://127.0.0.1:9/steal"})
    assert resp.status_code == 422, resp.text
