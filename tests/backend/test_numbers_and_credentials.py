"""Phone numbers (E.164, one organisation per number) and carrier credentials (encrypted at rest, masked in every
response, never returned in plaintext by any public route)."""

from __future__ import annotations

import uuid

import httpx
from backend_routes import ROUTES
from backend_testkit import create_agent, populate_org, register, unique_number

from backend.db.collections import CARRIER_CREDENTIALS, WEBHOOKS
from backend.services.container import Services


async def test_numbers_are_e164_and_unique(client: httpx.AsyncClient) -> None:
    owner = await register(client, "numbers")
    agent = await create_agent(client, owner)
    number = unique_number()
    created = await client.post("/api/v1/phone-numbers", json={"number": number, "carrier": "twilio",
                                                               "agent_id": agent["id"], "label": "Main"},
                                headers=owner.headers)
    assert created.status_code == 201 and created.json()["number"] == number
    for bad in ("0207 123 4567", "+44 20 7123 4567", "+999", "+4420712345678901234", "+440207123456"):
        resp = await client.post("/api/v1/phone-numbers", json={"number": bad, "carrier": "twilio"},
                                 headers=owner.headers)
        assert resp.status_code == 422, bad
        assert resp.json()["error"]["details"][0]["path"] == "body.number"
    carrier = await client.post("/api/v1/phone-numbers", json={"number": unique_number(), "carrier": "plivo"},
                                headers=owner.headers)
    assert carrier.status_code == 422 and carrier.json()["error"]["details"][0]["path"] == "body.carrier"
    again_here = await client.post("/api/v1/phone-numbers", json={"number": number, "carrier": "twilio"},
                                   headers=owner.headers)
    assert again_here.status_code == 409 and again_here.json()["error"]["code"] == "number_taken"
    # Another organisation may list it (nothing tells it the number is in use) but it routes nothing unverified.
    other = await register(client, "numbers-b")
    taken = await client.post("/api/v1/phone-numbers", json={"number": number, "carrier": "vobiz"},
                              headers=other.headers)
    assert taken.status_code == 201 and taken.json()["verified_at"] is None
    foreign_agent = await client.post("/api/v1/phone-numbers", json={"number": unique_number(), "carrier": "twilio",
                                                                     "agent_id": agent["id"]}, headers=other.headers)
    assert foreign_agent.status_code == 422 and foreign_agent.json()["error"]["details"][0]["path"] == "body.agent_id"
    relabel = await client.patch(f"/api/v1/phone-numbers/{created.json()['id']}", json={"label": "Sales"},
                                 headers=owner.headers)
    assert relabel.json()["label"] == "Sales" and relabel.json()["agent_id"] == agent["id"]
    assert (await client.delete(f"/api/v1/phone-numbers/{created.json()['id']}", headers=owner.headers)).status_code == 204
    again = await client.post("/api/v1/phone-numbers", json={"number": number, "carrier": "vobiz"},
                              headers=owner.headers)
    assert again.status_code == 201


async def test_credentials_are_encrypted_and_masked(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "creds")
    account_id, token = "AC" + uuid.uuid4().hex, "secret-" + uuid.uuid4().hex
    put = await client.put("/api/v1/org/carrier-credentials/twilio", json={"account_id": account_id,
                                                                         "auth_token": token}, headers=owner.headers)
    assert put.status_code == 200
    assert put.json()["account_id_masked"] == f"AC••••••{account_id[-4:]}"
    assert put.json()["auth_token_masked"] == "••••••••"
    stored = await services.db[CARRIER_CREDENTIALS].find_one({"_id": f"{owner.org_id}:twilio"})
    assert stored is not None
    raw = repr(stored)
    assert account_id not in raw and token not in raw
    # Ciphertext is bound to its organisation: copied into another org's record it does not decrypt.
    other = await register(client, "creds-b")
    await services.db[CARRIER_CREDENTIALS].insert_one({**stored, "_id": f"{other.org_id}:twilio", "org_id": other.org_id})
    assert await services.carriers.decrypted(other.org_id, "twilio") is None
    plain = await services.carriers.decrypted(owner.org_id, "twilio")
    assert plain is not None and plain.auth_token == token and plain.account_id == account_id


async def test_no_public_response_contains_a_secret(client: httpx.AsyncClient, services: Services) -> None:
    """Walks every public route as each role of an organisation that has carrier credentials, API keys, an
    invitation and a webhook, and scans every response body for any of the plaintext secrets."""
    org = await populate_org(client, services.store, "scan")
    secrets = [org.carrier_account_id, org.carrier_auth_token, org.admin_key, org.member_key]
    webhook = await services.db[WEBHOOKS].find_one({"_id": org.webhook["id"]})
    assert webhook is not None
    secrets.append(services.webhooks._box.decrypt(webhook["secret_enc"],
                                                  f"org:{org.owner.org_id}:webhook:{org.webhook['id']}:secret"))
    values = {**org.values(), **{k: "0" * 32 for k in org.values() if k.startswith("del_")}, "del_carrier": "vobiz"}
    seen = 0
    for headers in (org.owner.headers, org.admin.headers, org.member.headers, {"X-API-Key": org.admin_key}):
        for case in ROUTES:
            if case.method == "POST" and case.path.endswith("/api-keys"):
                continue  # creating a key returns that new key once, by design
            resp = await client.request(case.method, case.url(values), json=case.body(values) if case.body else None,
                                        headers=headers)
            seen += 1
            body = resp.text + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
            found = [s for s in secrets if s in body]
            assert not found, f"{case.method} {case.path} returned a secret"
    assert seen == 4 * (len(ROUTES) - 1)
