"""One stack per test session for the campaign tests: the fake carrier (a test double of the Twilio and Vobiz REST
APIs, in-process), the backend (real uvicorn, in-process, on the session's FerretDB + MinIO, no dialer of its own),
and the real voice server as a subprocess (no speech servers: calls connect and the agent stays silent, which keeps
scripted calls short on 2 cores). Dialers are started by each test, in-process or as subprocesses."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from campaign_testkit import InProcessServer, Subprocess, start_backend, start_voice_server

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import carrier_api_env
from voicectl.procs import free_port


@dataclass
class CampaignStack:
    carrier: FakeCarrier
    backend: InProcessServer
    voice: Subprocess
    voice_url: str
    db_name: str
    log_dir: Path
    http: httpx.AsyncClient

    @property
    def backend_url(self) -> str:
        return self.backend.url


@dataclass
class CampaignBase:
    """The backend and the fake carrier; the voice server's port is chosen but it is not started (API tests)."""

    carrier: FakeCarrier
    backend: InProcessServer
    voice_port: int
    db_name: str
    log_dir: Path
    http: httpx.AsyncClient

    @property
    def backend_url(self) -> str:
        return self.backend.url


@pytest.fixture(scope="session")
async def campaign_base(data_services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
                        ) -> AsyncIterator[CampaignBase]:
    db_name = f"campaigns_{uuid.uuid4().hex[:8]}"
    os.environ["MONGODB_DB"] = db_name
    log_dir = tmp_path_factory.mktemp("campaign-logs")
    carrier = FakeCarrier([])
    await carrier.start(free_port())
    # Every backend, dialer and voice server of these tests reaches Twilio and Vobiz there (they read the environment).
    os.environ.update(carrier_api_env(carrier.base_url))
    voice_port = free_port()
    backend = await start_backend(voice_url=f"http://127.0.0.1:{voice_port}", mongodb_db=db_name)
    http = httpx.AsyncClient(timeout=30)
    try:
        yield CampaignBase(carrier, backend, voice_port, db_name, log_dir, http)
    finally:
        await http.aclose()
        await backend.stop()
        await carrier.stop()


@pytest.fixture(scope="session")
async def campaign_stack(campaign_base: CampaignBase) -> AsyncIterator[CampaignStack]:
    b = campaign_base
    voice, voice_url = await start_voice_server(b.backend_url, b.log_dir, b.log_dir / "spool", port=b.voice_port)
    try:
        yield CampaignStack(b.carrier, b.backend, voice, voice_url, b.db_name, b.log_dir, b.http)
    finally:
        voice.stop()
