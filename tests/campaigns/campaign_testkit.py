"""Helpers for the campaign tests and the dialer benchmark: real servers (backend over uvicorn, the voice server as
a subprocess, dialers as subprocesses), the fake carrier (a test double of the Twilio/Vobiz REST APIs), and
provisioning through the public API the way a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import uvicorn
from fastapi import FastAPI

from backend.campaigns.clock import Clock
from backend.config import BackendSettings
from backend.main import create_app
from voice_server.testing.fake_carrier import FakeCall, FakeCarrier, ScriptedCallee
from voice_server.testing.simulator import CallScript, CarrierAccount
from voicectl.procs import free_port

REPO = Path(__file__).resolve().parents[2]

# Fast liveness for tests: a dead dialer is noticed within ~2 s.
DIALER_ENV = {
    "DIALER_POLL_INTERVAL_S": "0.1",
    "DIALER_CONTACT_REFRESH_S": "0.5",
    "DIALER_HEARTBEAT_S": "0.3",
    "DIALER_DEAD_AFTER_S": "2",
    "DIALER_CLAIM_TTL_S": "15",
    "DIALER_LOST_CALL_GRACE_S": "20",
    "LOG_LEVEL": "INFO",
}


def backend_settings(**overrides: Any) -> BackendSettings:
    values: dict[str, Any] = {
        "seed_demo": False, "argon2_time_cost": 1, "argon2_memory_kib": 1024,
        "login_attempts_per_ip_per_minute": 100_000, "register_per_ip_per_hour": 100_000,
        "worker_poll_interval_s": 0.1, "event_apply_wait_s": 0.0,
        "dialer_poll_interval_s": 0.1, "dialer_contact_refresh_s": 0.5, "dialer_heartbeat_s": 0.3,
        "dialer_dead_after_s": 2.0, "dialer_claim_ttl_s": 15.0, "dialer_lost_call_grace_s": 20.0,
        # The tests' webhook receivers are on loopback; private and metadata addresses stay refused.
        "egress_allowed_hosts": ["127.0.0.1:*"],
    }
    values.update(overrides)
    return BackendSettings(**values)


class InProcessServer:
    """A real uvicorn server for an ASGI app, on the test's event loop."""

    def __init__(self, app: FastAPI, port: int, lifespan: str = "on") -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                     access_log=False, lifespan=lifespan))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 60
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            if self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 30)


async def start_backend(*, voice_url: str, clock: Clock | None = None, port: int | None = None,
                        **overrides: Any) -> InProcessServer:
    """Reaches Twilio and Vobiz at TWILIO_API_BASE_URL / VOBIZ_API_BASE_URL (the fake carrier, set by conftest)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    settings = backend_settings(public_base_url=url, campaign_callback_base_url=url,
                                campaign_answer_base_url=voice_url, voice_server_url=voice_url, **overrides)
    app = create_app(settings)
    if clock is not None:
        app.state.campaign_clock = clock
    server = InProcessServer(app, port)
    await server.start()
    return server


class Subprocess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a crashed machine."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def base_env(db_name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["MONGODB_DB"] = db_name
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_dialer(db_name: str, backend_url: str, voice_url: str, log_dir: Path, **extra: str) -> Subprocess:
    env = {**base_env(db_name), **DIALER_ENV, "CAMPAIGN_CALLBACK_BASE_URL": backend_url,
           "CAMPAIGN_ANSWER_BASE_URL": voice_url, "PUBLIC_BASE_URL": backend_url, "SEED_DEMO": "false",
           "DIALER_ID": extra.pop("DIALER_ID", f"dialer-{uuid.uuid4().hex[:6]}"), **extra}
    return Subprocess("dialer", [sys.executable, "-m", "backend.campaigns"], env, log_dir)


async def start_voice_server(backend_url: str, log_dir: Path, spool: Path, port: int | None = None
                             ) -> tuple[Subprocess, str]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    dead = f"127.0.0.1:{free_port()}"  # no speech servers: calls still connect, the agent just cannot talk
    env = {**base_env(os.environ.get("MONGODB_DB", "x")), "BACKEND_URL": backend_url, "VOICE_PUBLIC_BASE_URL": url,
           "VOICE_SPOOL_DIR": str(spool), "RIVA_SERVER": dead, "TTS_URL": f"http://{dead}",
           "LLM_BASE_URL": f"http://{dead}/v1", "LOG_LEVEL": "WARNING", "SMART_TURN_ENABLED": "false"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("CAMPAIGN_TEST_VOICE_")})
    proc = Subprocess("voice-server", [sys.executable, "-m", "uvicorn", "voice_server.main:app", "--factory",
                                       "--host", "127.0.0.1", "--port", str(port), "--no-access-log"], env, log_dir)
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/health", timeout=1)).status_code == 200:
                    return proc, url
            if not proc.alive or time.monotonic() > deadline:
                raise RuntimeError(f"voice server did not start:\n{proc.tail()}")
            await asyncio.sleep(0.25)


# -- phone numbers -------------------------------------------------------------------------------------------------
_used: set[str] = set()


def contact_number(country: str = "US") -> str:
    """A random valid number (unique within the test session)."""
    while True:
        if country == "US":
            raw = f"+1{random.choice(['415', '212', '312', '617', '206'])}{random.randint(2000000, 9999999)}"
        else:
            raw = f"+91{random.choice(['98', '99', '97'])}{random.randint(10000000, 99999999)}"
        parsed = phonenumbers.parse(raw)
        if phonenumbers.is_valid_number(parsed) and raw not in _used:
            _used.add(raw)
            return raw


def caller_number(carrier: str) -> str:
    return contact_number("US" if carrier == "twilio" else "IN")


# -- provisioning through the public API ---------------------------------------------------------------------------
@dataclass
class Org:
    backend_url: str
    token: str
    org_id: str
    agent_id: str
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)  # carrier -> {"id", "number"}
    accounts: dict[str, CarrierAccount] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def ok(resp: httpx.Response, *codes: int) -> Any:
    assert resp.status_code in (codes or (200, 201)), f"{resp.request.method} {resp.request.url}: " \
                                                       f"{resp.status_code} {resp.text[:800]}"
    return resp.json() if resp.content and resp.headers.get("content-type", "").startswith("application/json") \
        else resp.text


async def provision_org(http: httpx.AsyncClient, backend_url: str, carrier: FakeCarrier,
                        carriers: tuple[str, ...] = ("twilio", "vobiz"),
                        agent_config: dict[str, Any] | None = None) -> Org:
    email = f"campaigns-{uuid.uuid4().hex[:10]}@example.com"
    body = await ok(await http.post(f"{backend_url}/api/v1/auth/register", json={
        "email": email, "password": "pw-" + secrets.token_urlsafe(12), "name": "Camp", "org_name": "Camp org"}))
    token, org_id = body["access_token"], body["organization_id"]
    headers = {"Authorization": f"Bearer {token}"}
    config = agent_config or {"greeting": "Hi {{first_name}}, this is Acme.", "max_duration_s": 60}
    agent = await ok(await http.post(f"{backend_url}/api/v1/agents", headers=headers,
                                     json={"name": "Campaign agent", "config": config}))
    org = Org(backend_url, token, org_id, agent["id"])
    for name in carriers:
        account_id = ("AC" + secrets.token_hex(16)) if name == "twilio" else ("MA_" + secrets.token_hex(8).upper())
        account = CarrierAccount(name, account_id, secrets.token_hex(16))  # type: ignore[arg-type]
        carrier.accounts[(name, account_id)] = account
        await ok(await http.put(f"{backend_url}/api/v1/org/carrier-credentials/{name}", headers=headers,
                                json={"account_id": account_id, "auth_token": account.auth_token}))
        number = caller_number(name)
        account.numbers.add(number)
        created = await ok(await http.post(f"{backend_url}/api/v1/phone-numbers", headers=headers,
                                           json={"number": number, "carrier": name}))
        org.numbers[name] = {"id": created["id"], "number": number}
        org.accounts[name] = account
    return org


def campaign_body(org: Org, **overrides: Any) -> dict[str, Any]:
    always = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    body: dict[str, Any] = {
        "name": f"Campaign {uuid.uuid4().hex[:6]}", "agent_id": org.agent_id,
        "caller_number_ids": [n["id"] for n in org.numbers.values()],
        "windows": {"timezone": "UTC", "days": always},
        "max_concurrent_calls": 5, "calls_per_second": 20, "ring_timeout_s": 10, "max_call_duration_s": 30,
        "retry": {"busy": {"max_attempts": 1, "delays_s": [0]}, "no_answer": {"max_attempts": 1, "delays_s": [0]},
                  "failed": {"max_attempts": 1, "delays_s": [0]}, "voicemail": {"max_attempts": 1, "delays_s": [0]}},
        "voicemail": {"detect": True, "action": "hang_up"},
    }
    body.update(overrides)
    return body


def contacts_csv(numbers: list[str], extra: dict[str, list[str]] | None = None) -> bytes:
    extra = extra or {}
    header = ["phone", "first_name", *extra]
    lines = [",".join(header)]
    for i, number in enumerate(numbers):
        lines.append(",".join([number, f"Person{i}", *(values[i] for values in extra.values())]))
    return ("\n".join(lines) + "\n").encode()


async def create_campaign(http: httpx.AsyncClient, org: Org, numbers: list[str], start: bool = True,
                          **overrides: Any) -> str:
    campaign = await ok(await http.post(f"{org.backend_url}/api/v1/campaigns", headers=org.headers,
                                        json=campaign_body(org, **overrides)))
    await ok(await http.post(f"{org.backend_url}/api/v1/campaigns/{campaign['id']}/contacts", headers=org.headers,
                             files={"file": ("contacts.csv", contacts_csv(numbers), "text/csv")}))
    if start:
        await ok(await http.post(f"{org.backend_url}/api/v1/campaigns/{campaign['id']}/start", headers=org.headers))
    return str(campaign["id"])


async def wait_campaign(http: httpx.AsyncClient, org: Org, campaign_id: str, status: str = "completed",
                        limit_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = await ok(await http.get(f"{org.backend_url}/api/v1/campaigns/{campaign_id}/progress",
                                       headers=org.headers))
        if last["status"] == status and last["live_calls"] == 0:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"campaign {campaign_id} not {status} after {limit_s}s: {last}")


async def until(condition: Callable[[], bool], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def all_contacts(http: httpx.AsyncClient, org: Org, campaign_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await ok(await http.get(f"{org.backend_url}/api/v1/campaigns/{campaign_id}/contacts",
                                       headers=org.headers, params=params))
        out.update({c["phone"]: c for c in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return out


def calls_to(carrier: FakeCarrier, numbers: set[str]) -> list[FakeCall]:
    return [c for c in list(carrier.calls.values()) if c.to_number in numbers]


def human(talk_s: float = 1.0) -> ScriptedCallee:
    return ScriptedCallee(outcome="human", ring_s=0.05, hangup_after_answer_s=talk_s,
                          script=CallScript(turns=[], hangup_after_s=None, max_duration_s=talk_s + 20))


def machine(greeting_s: float = 1.0) -> ScriptedCallee:
    return ScriptedCallee(outcome="voicemail", ring_s=0.05, amd_delay_s=0.2, hangup_after_answer_s=greeting_s + 3,
                          script=CallScript(turns=[], hangup_after_s=None, max_duration_s=greeting_s + 20))


def refusing(outcome: str) -> ScriptedCallee:
    return ScriptedCallee(outcome=outcome, ring_s=0.05)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def dialers(count: int, db_name: str, backend_url: str, voice_url: str, log_dir: Path,
                  **extra: str) -> AsyncIterator[list[Subprocess]]:
    procs = [start_dialer(db_name, backend_url, voice_url, log_dir, **extra) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()
