"""Fault tests with real processes. Two stacks, each started once per session and only when a test asks:

- `quiet_stack`: a backend subprocess with the dialer on the session's FerretDB + MinIO (tests/conftest.py), the fake
  carrier (a test double of the Twilio/Vobiz REST APIs, voice_server/testing/fake_carrier.py). Voice servers without
  speech servers are started per test (the drain and kill tests end them).
- `outage_stack`: FerretDB and MinIO of its own (a test stops and restarts them on the same port and data), a backend
  and a voice server with the real speech servers, so the caller gets answers while a data service is down.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from reliability_helpers import FAST_DIALER, FAST_LEASE, OutageStack, QuietStack, backend_process, start_voice
from stack_helpers import AsrServer, running_fake_carrier

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import carrier_api_env
from voicectl.data_services import DataServices, ensure_dev_secrets
from voicectl.procs import free_port

# Helpers of the campaign and voice suites (provisioning, caller phrases), reused rather than copied.
for _suite in ("campaigns", "voice"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _suite))


@pytest.fixture(scope="session")
async def reliability_carrier() -> AsyncIterator[FakeCarrier]:
    async with running_fake_carrier() as carrier:
        yield carrier


@pytest.fixture(scope="session")
def speech_env(asr_server: AsrServer, tts_url: str, llm_url: str) -> dict[str, str]:
    """The real speech servers, for calls that must stay up (without them the agent's degradation chain ends the
    call: no TTS and no recorded clip means it cannot speak)."""
    return {"RIVA_SERVER": asr_server.address, "TTS_URL": tts_url, "LLM_BASE_URL": f"{llm_url}/v1"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
def quiet_stack(data_services: dict[str, str], state_dir: Path, reliability_carrier: FakeCarrier
                ) -> Iterator[QuietStack]:
    port, voice_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    db_name = f"reliability_{uuid.uuid4().hex[:8]}"
    run_dir = state_dir / "reliability"
    env = {**data_services, **FAST_DIALER, **carrier_api_env(reliability_carrier.base_url), "MONGODB_DB": db_name,
           "DIALER_ENABLED": "true",
           "PUBLIC_BASE_URL": url, "CAMPAIGN_CALLBACK_BASE_URL": url,
           "CAMPAIGN_ANSWER_BASE_URL": f"http://127.0.0.1:{voice_port}", "VOICE_SERVER_URL": f"http://127.0.0.1:{voice_port}"}
    backend = backend_process(run_dir, port=port, env=env, name="reliability-backend")
    backend.start()
    try:
        yield QuietStack(backend, url, db_name, reliability_carrier, run_dir, voice_port)
    finally:
        backend.stop()


@pytest.fixture(scope="session")
def outage_stack(tmp_path_factory: pytest.TempPathFactory, asr_server: AsrServer, tts_url: str, llm_url: str,
                 data_services: dict[str, str], reliability_carrier: FakeCarrier) -> Iterator[OutageStack]:
    state = tmp_path_factory.mktemp("outage-state")
    secrets = ensure_dev_secrets(state)
    # Its own FerretDB and MinIO (never the session's: stopping those would hurt every other test).
    data = DataServices(state=state, ferretdb_port=free_port(), minio_port=free_port())
    env = data.start()
    env |= {"S3_ACCESS_KEY": secrets["S3_ACCESS_KEY"], "S3_SECRET_KEY": secrets["S3_SECRET_KEY"]}
    db_name = f"outage_{uuid.uuid4().hex[:8]}"
    run_dir = state / "run"
    port = free_port()
    backend_url = f"http://127.0.0.1:{port}"
    backend = backend_process(run_dir, port=port, env={**env, **carrier_api_env(reliability_carrier.base_url),
                                                       "MONGODB_DB": db_name, "PUBLIC_BASE_URL": backend_url},
                              name="outage-backend")
    voice = None
    try:
        backend.start()
        spool = state / "voice-spool"
        voice_env = {**env, "BACKEND_URL": backend_url, "RIVA_SERVER": asr_server.address, "TTS_URL": tts_url,
                     "LLM_BASE_URL": f"{llm_url}/v1", "VOICE_SPOOL_DIR": str(spool), "VOICE_SERVER_ID": "voice-outage",
                     "LOG_LEVEL": "INFO", "EVENT_RETRY_MAX_S": "2", "RECORDING_RETRY_MAX_S": "2",
                     # A lease far shorter than the outages: proves the backend never ends calls it could not watch.
                     **FAST_LEASE, "VOICE_CALL_LEASE_S": "5",
                     "SERVICE_TOKEN_SECRET": os.environ["SERVICE_TOKEN_SECRET"],
                     "CALL_TOKEN_SECRET": os.environ["CALL_TOKEN_SECRET"]}
        voice, voice_url = start_voice(run_dir, voice_env, "outage-voice")
        yield OutageStack(data, env, backend, backend_url, voice, voice_url, spool, db_name)
    finally:
        if voice is not None:
            voice.stop()
        backend.stop()
        data.stop()
