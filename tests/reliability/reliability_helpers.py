"""Real processes for the fault tests: backends and voice servers as subprocesses (voicectl's ManagedProcess, so a
test can stop, kill and restart them on the same port), FerretDB/MinIO of their own where a test stops them.

A unique module name: tests/ is not a package and conftest.py files put their folders on sys.path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from stack_helpers import backend_process as stack_backend_process

from core.service_auth import mint_service_token
from voice_server.testing.fake_carrier import FakeCarrier
from voicectl.data_services import DataServices
from voicectl.launch import voice_server_process
from voicectl.procs import ManagedProcess, free_port

FAST_BACKEND = {
    "SEED_DEMO": "false", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
    "REGISTER_PER_IP_PER_HOUR": "100000", "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
    "WORKER_POLL_INTERVAL_S": "0.1", "CALL_LEASE_CHECK_INTERVAL_S": "0.25", "LEADER_WINDOW_S": "2",
    "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
}
# The dialer's liveness settings the campaign tests use (tests/campaigns/campaign_testkit.py DIALER_ENV).
FAST_DIALER = {
    "DIALER_POLL_INTERVAL_S": "0.1", "DIALER_CONTACT_REFRESH_S": "0.5", "DIALER_HEARTBEAT_S": "0.3",
    "DIALER_DEAD_AFTER_S": "2", "DIALER_CLAIM_TTL_S": "15", "DIALER_LOST_CALL_GRACE_S": "20",
}
# Short call leases so a dead voice server is noticed in seconds.
FAST_LEASE = {"VOICE_HEARTBEAT_INTERVAL_S": "0.5", "VOICE_CALL_LEASE_S": "3"}


def backend_process(run_dir: Path, *, port: int, env: dict[str, str], name: str = "backend") -> ManagedProcess:
    """Ready at /health/live: outage tests start it while MongoDB may be down."""
    return stack_backend_process(run_dir, port=port, env={**FAST_BACKEND, **env}, name=name, ready_path="/health/live")


def silent_voice_env(backend_url: str, spool: Path, server_id: str, **extra: str) -> dict[str, str]:
    """No speech servers (dead endpoints): calls connect and the agent stays silent, which keeps calls cheap on
    2 cores (the campaign tests do the same)."""
    dead = f"127.0.0.1:{free_port()}"
    return {"BACKEND_URL": backend_url, "VOICE_SPOOL_DIR": str(spool), "VOICE_SERVER_ID": server_id,
            "RIVA_SERVER": dead, "TTS_URL": f"http://{dead}", "LLM_BASE_URL": f"http://{dead}/v1",
            "LLM_WARMUP": "false", "SMART_TURN_ENABLED": "false", "LOG_LEVEL": "WARNING", "EVENT_RETRY_MAX_S": "1",
            "RECORDING_RETRY_MAX_S": "1", "PYTHONUNBUFFERED": "1", **FAST_LEASE, **extra}


def start_voice(run_dir: Path, env: dict[str, str], name: str, port: int | None = None) -> tuple[ManagedProcess, str]:
    port = port or free_port()
    proc = voice_server_process(run_dir, port=port, env=env, name=name)
    proc.start_timeout = 180.0
    proc.start()
    return proc, f"http://127.0.0.1:{port}"


def kill(proc: ManagedProcess) -> None:
    """SIGKILL to the whole process group: no cleanup at all, like a lost node."""
    assert proc.proc is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait(10)
    proc.stop()  # forgets the pid file


def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'reliability-tests')}"}


async def voice_status(http: httpx.AsyncClient, voice_url: str) -> dict[str, Any]:
    resp = await http.get(f"{voice_url}/internal/v1/status", headers=service_headers(), timeout=5)
    resp.raise_for_status()
    return dict(resp.json())


async def until(check: Callable[[], Any], limit_s: float, what: str, every_s: float = 0.2) -> Any:
    """Polls `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + limit_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if asyncio.iscoroutine(last):
                last = await last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what}: not reached in {limit_s:.0f}s (last: {last!r})")


@dataclass
class Figures:
    """Measured numbers a test reports (printed; docs/reliability.md quotes them)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def show(self) -> None:
        print(f"\n[reliability] {self.name}: " + ", ".join(f"{k}={v}" for k, v in self.values.items()))


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class QuietStack:
    backend: ManagedProcess
    backend_url: str
    db_name: str
    carrier: FakeCarrier
    run_dir: Path
    voice_port: int  # the dialer's answer URL points here; tests start their voice server on it


@dataclass
class OutageStack:
    data: DataServices
    env: dict[str, str]  # MONGODB_URI, S3_* of this stack
    backend: ManagedProcess
    backend_url: str
    voice: ManagedProcess
    voice_url: str
    spool: Path
    db_name: str

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.data.processes if p.name == name)
