"""A backend and voice servers as real processes for the carrier-webhook attacker tests (no speech servers: the
answer webhook is all these tests need; the greeting's synthesis fails quietly in the background)."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.simulator import CallScript, CarrierAccount, SimulatedCall
from voicectl.procs import ManagedProcess, free_port, http_ok


def backend_env(data_services: dict[str, str], fake: FakeCarrier) -> dict[str, str]:
    return {**data_services, "MONGODB_DB": f"secvoice_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "false",
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "REGISTER_PER_IP_PER_HOUR": "100000",
            "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000", "WORKER_POLL_INTERVAL_S": "0.05", "LOG_LEVEL": "WARNING",
            "EVENT_APPLY_WAIT_S": "10",
            "TWILIO_API_BASE_URL": fake.base_url, "VOBIZ_API_BASE_URL": fake.base_url}


def start_backend(run_dir: Path, env: dict[str, str]) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess("sec-backend", [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1",
                                          "--port", str(port), "--no-access-log"],
                          run_dir, ports=[port], env=env, ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                          start_timeout=120.0)
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


def start_voice(run_dir: Path, name: str, backend_url: str, access_log: bool = False,
                **extra: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    env = {"BACKEND_URL": backend_url, "VOICE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "VOICE_SPOOL_DIR": str(run_dir / f"{name}-spool"), "VOICE_SERVER_ID": name,
           "RIVA_SERVER": dead, "TTS_URL": f"http://{dead}", "LLM_BASE_URL": f"http://{dead}/v1",
           "LLM_WARMUP": "false", "SMART_TURN_ENABLED": "false", "LOG_LEVEL": "WARNING", "EVENT_RETRY_MAX_S": "1",
           "SERVICE_TOKEN_SECRET": os.environ["SERVICE_TOKEN_SECRET"],
           "CALL_TOKEN_SECRET": os.environ["CALL_TOKEN_SECRET"], **extra}
    proc = ManagedProcess(name, [sys.executable, "-m", "uvicorn", "--factory", "voice_server.main:app", "--host",
                                 "127.0.0.1", "--port", str(port), *([] if access_log else ["--no-access-log"])],
                          run_dir, ports=[port], env=env, ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                          start_timeout=180.0)
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_stack(data_services: dict[str, str], fake: FakeCarrier, run_dir: Path, name: str,
                  **voice_extra: str) -> Iterator[tuple[str, str]]:
    """(backend URL, voice server URL), both running until the block ends."""
    backend, backend_url = start_backend(run_dir, backend_env(data_services, fake))
    try:
        voice, voice_url = start_voice(run_dir, name, backend_url, **voice_extra)
        try:
            yield backend_url, voice_url
        finally:
            voice.stop()
    finally:
        backend.stop()


@dataclass
class Line:
    carrier: str
    number: str
    account: CarrierAccount
    org_id: str
    headers: dict[str, str]


async def provision(http: httpx.AsyncClient, backend_url: str, fake: FakeCarrier, carrier: str) -> Line:
    """Through the public API, as a user would: an account, an agent, carrier credentials, a number the carrier
    account owns (the backend checks it with the fake carrier)."""
    email = f"line-{uuid.uuid4().hex[:10]}@example.com"
    reg = await http.post(f"{backend_url}/api/v1/auth/register", json={
        "email": email, "password": "pw-" + secrets.token_urlsafe(12), "name": "line", "org_name": "line org"})
    assert reg.status_code == 201, reg.text
    headers = {"Authorization": f"Bearer {reg.json()['access_token']}"}
    agent = await http.post(f"{backend_url}/api/v1/agents", headers=headers, json={"name": "a", "config": {}})
    account_id = ("AC" + secrets.token_hex(16)) if carrier == "twilio" else ("MA_" + secrets.token_hex(8).upper())
    number = f"+1415{uuid.uuid4().int % 10**7:07d}" if carrier == "twilio" else f"+91998{uuid.uuid4().int % 10**7:07d}"
    account = CarrierAccount(carrier, account_id, secrets.token_hex(16))  # type: ignore[arg-type]
    account.numbers = {number}  # assigned (not added): the same helper then runs against the code before the fix
    fake.accounts[(carrier, account_id)] = account
    creds = await http.put(f"{backend_url}/api/v1/org/carrier-credentials/{carrier}", headers=headers,
                           json={"account_id": account_id, "auth_token": account.auth_token})
    assert creds.status_code == 200, creds.text
    created = await http.post(f"{backend_url}/api/v1/phone-numbers", headers=headers,
                              json={"number": number, "carrier": carrier, "agent_id": agent.json()["id"]})
    assert created.status_code == 201, created.text
    return Line(carrier, number, account, reg.json()["organization_id"], headers)


def answer_url(voice_url: str, carrier: str) -> str:
    return f"{voice_url}/twilio/voice" if carrier == "twilio" else f"{voice_url}/vobiz/answer"


def call(line: Line, voice_url: str, http: httpx.AsyncClient, *, via: str | None = None,
         account: CarrierAccount | None = None) -> SimulatedCall:
    """A call to `line` as its carrier (or the carrier `via`) would announce it; signed with `account`'s token."""
    carrier: Any = via or line.carrier
    return SimulatedCall(carrier=carrier, answer_url=answer_url(voice_url, carrier), account=account or line.account,
                         from_number="+14155550100", to_number=line.number, script=CallScript(), http=http)
