"""Helpers for the backend tests (a unique module name: tests/ is not a package, so plain names would clash)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from backend.config import BackendSettings
from core.service_auth import mint_service_token


def backend_settings(**overrides: Any) -> BackendSettings:
    values: dict[str, Any] = {
        "seed_demo": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "login_attempts_per_ip_per_minute": 100_000,
        "register_per_ip_per_hour": 100_000,
        "login_failures_per_email": 5,
        # The tests' own receivers run on loopback; attacker tests (tests/security) build stricter backends.
        "egress_allowed_hosts": ["127.0.0.1:*"],
        "webhook_backoff_base_s": 0.2,
        "webhook_timeout_s": 2.0,
        "worker_poll_interval_s": 0.05,
        "cors_origins": ["http://ui.example.test"],
        "event_apply_wait_s": 15.0,  # read-your-writes even on a loaded 2-core machine
    }
    values.update(overrides)
    return BackendSettings(**values)


def service_headers(service: str = "voice-server") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], service)}"}


@dataclass
class Account:
    email: str
    password: str
    org_id: str
    user_id: str
    access_token: str
    refresh_token: str
    role: str = "owner"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(client: httpx.AsyncClient, name: str = "user") -> Account:
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct-horse-" + uuid.uuid4().hex[:6]
    resp = await client.post("/api/v1/auth/register",
                             json={"email": email, "password": password, "name": name, "org_name": f"{name} org"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    return Account(email, password, body["organization_id"], me["user"]["id"], body["access_token"],
                   body["refresh_token"])


async def add_member(client: httpx.AsyncClient, owner: Account, role: str, name: str = "member") -> Account:
    """Invites a new person with `role` into owner's organisation and signs them in."""
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    password = "member-pass-" + uuid.uuid4().hex[:6]
    inv = await client.post("/api/v1/org/invitations", json={"email": email, "role": role}, headers=owner.headers)
    assert inv.status_code == 201, inv.text
    resp = await client.post("/api/v1/auth/invitations/accept",
                             json={"token": inv.json()["token"], "password": password, "name": name})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    return Account(email, password, owner.org_id, me["user"]["id"], body["access_token"], body["refresh_token"],
                   role=role)


AGENT_CONFIG = {
    "system_prompt": "You are a test agent for {{business}}.",
    "greeting": "Hello from {{business}}",
    "variables": {"business": "Test Co"},
}


async def create_agent(client: httpx.AsyncClient, account: Account, name: str = "Agent") -> dict[str, Any]:
    resp = await client.post("/api/v1/agents", json={"name": name, "config": AGENT_CONFIG}, headers=account.headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def unique_number() -> str:
    # London numbers (+44 20 7xxx xxxx) with a random tail: valid E.164 and unique per test.
    return f"+44207{uuid.uuid4().int % 10**7:07d}"


async def post_events(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    resp = await client.post("/internal/v1/calls/events", json={"events": events}, headers=service_headers())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def call_events(
    org_id: str, call_id: str | None = None, agent_id: str | None = None, direction: str = "inbound",
    turns: int = 2, duration_s: float = 42.0, end_reason: str = "caller_hangup", campaign_id: str | None = None,
    at: str | None = None, v2v_ms: list[float] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A plausible call: started, turns with latency, ended with usage."""
    call_id = call_id or uuid.uuid4().hex
    base = at or "2030-01-15T10:00:00+00:00"
    events: list[dict[str, Any]] = [{
        "type": "call.started", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": base, "org_id": org_id,
        "agent_id": agent_id, "direction": direction, "carrier": "twilio", "from_number": "+14155550100",
        "to_number": "+14155550199", "campaign_id": campaign_id,
    }]
    if v2v_ms is not None:
        turns = 2 * len(v2v_ms)
    for i in range(turns):
        v2v = v2v_ms[i // 2] if v2v_ms is not None else 600.0 + i
        latency = {"voice_to_voice_ms": v2v, "stt_final_ms": 120.0}
        events.append({
            "type": "call.turn", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": base, "turn_index": i,
            "speaker": "caller" if i % 2 == 0 else "agent", "text": f"turn {i} of call {call_id[:6]}",
            "start_ms": i * 1000, "end_ms": i * 1000 + 800, "latency": latency if i % 2 == 1 else None,
        })
    events.append({
        "type": "call.ended", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": base,
        "end_reason": end_reason, "duration_s": duration_s,
        "usage": {"caller_audio_s": 10.0, "agent_audio_s": 8.0, "stt_audio_s": 10.0, "llm_prompt_tokens": 100,
                  "llm_completion_tokens": 20, "tts_characters": 150},
    })
    return call_id, events


@dataclass
class PopulatedOrg:
    owner: Account
    admin: Account
    member: Account
    admin_key: str
    member_key: str
    agent: dict[str, Any]
    number: dict[str, Any]
    webhook: dict[str, Any]
    call_id: str
    invitation_id: str
    api_key_ids: list[str]
    carrier_account_id: str
    carrier_auth_token: str
    recording: bytes
    marker: str

    def values(self) -> dict[str, str]:
        """Placeholders filled with this organisation's real resources (DELETE targets included)."""
        return {
            "org_id": self.owner.org_id, "agent_id": self.agent["id"], "number_id": self.number["id"],
            "webhook_id": self.webhook["id"], "call_id": self.call_id, "member_id": self.member.user_id,
            "del_member_id": self.member.user_id, "del_invitation_id": self.invitation_id,
            "del_api_key_id": self.api_key_ids[0], "del_carrier": "twilio", "del_agent_id": self.agent["id"],
            "del_number_id": self.number["id"], "del_webhook_id": self.webhook["id"],
            "del_call_id": self.call_id,
        }

    def markers(self) -> list[str]:
        """Strings that identify this organisation's data; none may appear in another organisation's responses."""
        return [
            self.marker, self.owner.org_id, self.agent["id"], self.number["id"], self.number["number"],
            self.webhook["id"], self.webhook["url"], self.call_id, self.invitation_id, *self.api_key_ids,
            self.owner.email, self.admin.email, self.member.email, self.carrier_account_id, self.carrier_auth_token,
            self.admin_key, self.member_key,
        ]


async def populate_org(client: httpx.AsyncClient, store: Any, name: str = "alpha") -> PopulatedOrg:
    """An organisation with people in every role, keys, an agent, a number, carrier credentials, a webhook, an
    invitation and a call with a recording."""
    marker = f"{name}-{uuid.uuid4().hex[:10]}"
    owner = await register(client, name)
    admin = await add_member(client, owner, "admin", f"{name}-admin")
    member = await add_member(client, owner, "member", f"{name}-member")
    keys = []
    for role in ("admin", "member"):
        resp = await client.post("/api/v1/org/api-keys", json={"name": f"{marker} {role}", "role": role},
                                 headers=owner.headers)
        assert resp.status_code == 201, resp.text
        keys.append(resp.json())
    agent = await create_agent(client, owner, f"Agent {marker}")
    number = (await client.post("/api/v1/phone-numbers", json={"number": unique_number(), "carrier": "twilio",
                                                               "agent_id": agent["id"], "label": marker},
                                headers=owner.headers)).json()
    account_id = "AC" + uuid.uuid4().hex
    auth_token = "tok-" + uuid.uuid4().hex
    creds = await client.put("/api/v1/org/carrier-credentials/twilio",
                             json={"account_id": account_id, "auth_token": auth_token}, headers=owner.headers)
    assert creds.status_code == 200, creds.text
    webhook = (await client.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{marker}",
                                                           "events": ["call.ended"], "active": False},
                                 headers=owner.headers)).json()
    invitation = (await client.post("/api/v1/org/invitations", json={"email": f"{marker}@example.com"},
                                    headers=owner.headers)).json()
    call_id, events = call_events(owner.org_id, agent_id=agent["id"])
    recording = b"RIFF" + uuid.uuid4().bytes * 64
    key = f"{owner.org_id}/{call_id}.wav"
    await store.put_bytes(key, recording, "audio/wav")
    events.append({"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id,
                   "at": "2030-01-15T10:01:00+00:00", "bucket": store.bucket, "key": key,
                   "size_bytes": len(recording), "duration_s": 42.0, "sample_rate": 16000, "channels": 2})
    await post_events(client, events)
    return PopulatedOrg(owner, admin, member, keys[0]["key"], keys[1]["key"], agent, number, webhook, call_id,
                        invitation["id"], [k["id"] for k in keys], account_id, auth_token, recording, marker)
