"""Attacker tests (issue 16): each one does what an attacker would, against the real services (the backend
in-process over ASGI or as a uvicorn process, real FerretDB and MinIO, real listeners on loopback), and fails on the
code before the fix. docs/security.md lists each control with its test.

The backends here are stricter than the other suites': the egress allow-list names specific host:port pairs only
(never "all loopback"), so a test can prove that an internal address is refused while an allowed one still works.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))  # backend_testkit (tests/ is no package)

from backend_testkit import backend_settings  # noqa: E402
from security_testkit import Listener, asgi_client, known_settings  # noqa: E402
from stack_helpers import running_fake_carrier  # noqa: E402

from backend.config import BackendSettings  # noqa: E402
from backend.main import create_app  # noqa: E402
from voice_server.testing.fake_carrier import FakeCarrier  # noqa: E402


@pytest.fixture(scope="session")
async def allowed_listener() -> AsyncIterator[Listener]:
    """A receiver the operator allow-listed (EGRESS_ALLOWED_HOSTS names its exact host:port)."""
    async with Listener.running() as listener:
        yield listener


@pytest.fixture(scope="session")
async def internal_listener() -> AsyncIterator[Listener]:
    """Stands for an internal service (the API, MinIO, a metadata endpoint): on loopback and NOT allow-listed."""
    async with Listener.running() as listener:
        yield listener


@pytest.fixture(scope="session")
async def fake_carrier() -> AsyncIterator[FakeCarrier]:
    """Twilio's and Vobiz's REST APIs (a test double following the protocol reference)."""
    async with running_fake_carrier() as carrier:
        yield carrier


@pytest.fixture(scope="session")
async def strict_backend(data_services: dict[str, str], allowed_listener: Listener, fake_carrier: FakeCarrier
                         ) -> AsyncIterator[FastAPI]:
    app = create_app(backend_settings(**known_settings(
        BackendSettings,
        mongodb_db=f"security_{uuid.uuid4().hex[:8]}",
        twilio_api_base_url=fake_carrier.base_url, vobiz_api_base_url=fake_carrier.base_url,
        egress_allowed_hosts=[f"127.0.0.1:{allowed_listener.port}"],
        trusted_proxies=["10.0.0.1/32"],
        login_failures_per_email=3, login_max_delay_s=0.2, login_attempts_per_ip_per_minute=6,
        max_body_bytes=64 * 1024, campaign_csv_max_bytes=256 * 1024,
        # The pre-fix code's own production default (that setting is gone now), so the run against it is fair.
        webhook_allow_private_targets=False,
    )))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def client(strict_backend: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(strict_backend) as http:
        yield http


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """For the tests against processes (backend and voice servers on loopback)."""
    async with httpx.AsyncClient(timeout=60) as client:
        yield client
