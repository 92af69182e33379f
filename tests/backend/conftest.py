"""The backend in-process (its real lifespan: indexes, bucket, background workers) against the session's real
FerretDB and MinIO, reached through httpx's ASGI transport. One app per session; each test makes its own
organisations, so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from backend_testkit import backend_settings
from fastapi import FastAPI
from stack_helpers import running_fake_carrier

from backend.main import create_app
from backend.services.container import Services
from voice_server.testing.fake_carrier import FakeCarrier


@pytest.fixture(scope="session")
async def fake_carrier() -> AsyncIterator[FakeCarrier]:
    """Twilio's and Vobiz's APIs (a test double): number ownership checks ask it."""
    async with running_fake_carrier() as carrier:
        yield carrier


@pytest.fixture(scope="session")
async def backend(data_services: dict[str, str], tts_url: str, fake_carrier: FakeCarrier) -> AsyncIterator[FastAPI]:
    """With the real TTS server: the agent editor's voice routes reach it."""
    app = create_app(backend_settings(mongodb_db=f"backend_{uuid.uuid4().hex[:8]}", tts_url=tts_url,
                                      twilio_api_base_url=fake_carrier.base_url,
                                      vobiz_api_base_url=fake_carrier.base_url))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
def services(backend: FastAPI) -> Services:
    svc: Services = backend.state.services
    return svc


@pytest.fixture(scope="session")
async def client(backend: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=backend, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
