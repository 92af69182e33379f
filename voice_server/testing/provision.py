"""Sets up a phone line to simulate calls against, through the backend's public API (the way a user would):
a throwaway account and organisation, an agent, carrier credentials, and a number that the carrier account owns at
the fake carrier, so the backend's ownership check passes and the number routes calls. The backend must be started
with TWILIO_API_BASE_URL / VOBIZ_API_BASE_URL pointing at the fake carrier (`carrier_api_env`)."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.simulator import CarrierAccount


@dataclass
class SimLine:
    backend_url: str
    carrier: Literal["twilio", "vobiz"]
    number: str  # E.164, linked to the agent
    org_id: str
    agent_id: str
    account: CarrierAccount
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def call_detail(self, http: httpx.AsyncClient, call_id: str) -> dict[str, Any] | None:
        resp = await http.get(f"{self.backend_url}/api/v1/calls/{call_id}", headers=self.headers)
        return dict(resp.json()) if resp.status_code == 200 else None


def unique_number(carrier: str) -> str:
    tail = uuid.uuid4().int % 10 ** 7
    return f"+91998{tail:07d}" if carrier == "vobiz" else f"+1415{tail:07d}"


async def _ok(resp: httpx.Response, what: str) -> dict[str, Any]:
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"{what} failed: HTTP {resp.status_code} {resp.text[:300]}")
    return dict(resp.json())


async def register(http: httpx.AsyncClient, backend_url: str, name: str = "simulator") -> tuple[str, str]:
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    body = await _ok(await http.post(f"{backend_url}/api/v1/auth/register", json={
        "email": email, "password": "sim-" + secrets.token_urlsafe(12), "name": name, "org_name": f"{name} org"}),
        "register")
    return str(body["access_token"]), str(body["organization_id"])


def carrier_api_env(fake_carrier_url: str) -> dict[str, str]:
    """The backend's environment for reaching the fake carrier instead of Twilio's and Vobiz's APIs."""
    return {"TWILIO_API_BASE_URL": fake_carrier_url, "VOBIZ_API_BASE_URL": fake_carrier_url}


async def provision_line(http: httpx.AsyncClient, backend_url: str, *, carrier: Literal["twilio", "vobiz"],
                         fake_carrier: FakeCarrier, agent_config: dict[str, Any] | None = None,
                         access_token: str | None = None, org_id: str | None = None,
                         account: CarrierAccount | None = None) -> SimLine:
    if access_token is None or org_id is None:
        access_token, org_id = await register(http, backend_url)
    headers = {"Authorization": f"Bearer {access_token}"}
    agent = await _ok(await http.post(f"{backend_url}/api/v1/agents", headers=headers,
                                      json={"name": f"sim-{carrier}", "config": agent_config or {}}), "create agent")
    if account is None:
        account_id = ("AC" + secrets.token_hex(16)) if carrier == "twilio" else ("MA_" + secrets.token_hex(8).upper())
        account = CarrierAccount(carrier, account_id, secrets.token_hex(16))
    fake_carrier.accounts.setdefault((carrier, account.account_id), account)
    creds: dict[str, Any] = {"account_id": account.account_id, "auth_token": account.auth_token}
    await _ok(await http.put(f"{backend_url}/api/v1/org/carrier-credentials/{carrier}", headers=headers, json=creds),
              "carrier credentials")
    number = unique_number(carrier)
    account.numbers.add(number)  # the account owns it at the (fake) carrier
    created = await _ok(await http.post(f"{backend_url}/api/v1/phone-numbers", headers=headers,
                                        json={"number": number, "carrier": carrier, "agent_id": agent["id"]}),
                        "phone number")
    if not created.get("verified_at"):
        raise RuntimeError(f"{number} was not verified: is the backend's {carrier.upper()}_API_BASE_URL the fake "
                           "carrier's URL?")
    return SimLine(backend_url=backend_url, carrier=carrier, number=number, org_id=org_id, agent_id=str(agent["id"]),
                   account=account, access_token=access_token)


async def supervisor_ticket(http: httpx.AsyncClient, line: SimLine, caller: str, action: str,
                            timeout_s: float = 30.0) -> tuple[str, dict[str, Any]]:
    """The live call from `caller` (other calls may be live in the same organisation) and a supervisor's ticket
    for it (`listen` or `takeover`), as soon as the backend can reach the voice server holding it (409 until then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        live = [c for c in (await http.get(f"{line.backend_url}/api/v1/live/calls", headers=line.headers)).json()
                if c["from_number"] == caller]
        if live:
            resp = await http.post(f"{line.backend_url}/api/v1/live/calls/{live[0]['id']}/{action}",
                                   headers=line.headers)
            if resp.status_code == 200:
                return str(live[0]["id"]), dict(resp.json())
            if resp.status_code != 409:
                raise RuntimeError(f"{action}: {resp.status_code} {resp.text}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no live call from {caller} to {action}")
