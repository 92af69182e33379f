"""The whole call path, for real: FerretDB + MinIO (tests/conftest.py), the speech servers (ASR, TTS, LLM), the
backend and the voice server as subprocesses on free ports. Only the carriers' REST APIs are faked
(voice_server/testing/fake_carrier.py, a test double that follows the protocol reference); the carriers'
webhooks and media streams come from the telephony simulator (also a test double).

One of each per session; every test provisions its own lines through the backend's API.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from stack_helpers import AsrServer, run_backend, running_fake_carrier, start_process, synthesize
from voicetest_helpers import PHRASES, TEST_AGENT, Simulate, VoiceServer

from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine, carrier_api_env, provision_line, register
from voice_server.testing.simulator import CallReport, CallScript, SimulatedCall
from voicectl.launch import voice_server_process
from voicectl.procs import free_port


def _backend_env(data_services: dict[str, str]) -> dict[str, str]:
    return {
        **data_services,
        "MONGODB_DB": f"voice_{uuid.uuid4().hex[:8]}",
        "SEED_DEMO": "false",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        # One owner token serves the whole voice session (over half an hour on 2 cores).
        "ACCESS_TOKEN_TTL_S": "7200",
        "REGISTER_PER_IP_PER_HOUR": "100000",
        "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
        "WORKER_POLL_INTERVAL_S": "0.05",
        "LOG_LEVEL": "WARNING",
        # The tests' own stand-ins (dead endpoints, tool servers) are on loopback; tests/security proves refusal.
        "EGRESS_ALLOWED_HOSTS": "127.0.0.1:*",
    }


@pytest.fixture(scope="session")
def voice_server_port() -> int:
    """Chosen before the backend starts: the backend builds browser test-call socket URLs from it."""
    return free_port()


@pytest.fixture(scope="session")
def backend_url(data_services: dict[str, str], state_dir: Path, tts_url: str, voice_server_port: int,
                fake_carrier: FakeCarrier, embed_url: str) -> Iterator[str]:
    yield from run_backend(state_dir, "backend-for-voice", {
        **_backend_env(data_services), **carrier_api_env(fake_carrier.base_url), "TTS_URL": tts_url,
        "CALL_TOKEN_SECRET": os.environ["CALL_TOKEN_SECRET"], "EMBEDDINGS_BASE_URL": embed_url,
        "VOICE_SERVER_URL": f"http://127.0.0.1:{voice_server_port}"})


@pytest.fixture(scope="session")
def voice_server(backend_url: str, asr_server: AsrServer, tts_url: str, llm_url: str, data_services: dict[str, str],
                 state_dir: Path, voice_server_port: int, embed_url: str) -> Iterator[VoiceServer]:
    port = voice_server_port
    spool = state_dir / "voice-spool"
    env = {
        **data_services,
        "BACKEND_URL": backend_url,
        "RIVA_SERVER": asr_server.address,
        "TTS_URL": tts_url,
        "LLM_BASE_URL": f"{llm_url}/v1",
        "EMBEDDINGS_BASE_URL": embed_url,
        "VOICE_SPOOL_DIR": str(spool),
        "VOICE_SERVER_ID": "voice-test",
        "LOG_LEVEL": "INFO",
        "EVENT_RETRY_MAX_S": "2",
        "RECORDING_RETRY_MAX_S": "2",
        "SERVICE_TOKEN_SECRET": os.environ["SERVICE_TOKEN_SECRET"],
        "CALL_TOKEN_SECRET": os.environ["CALL_TOKEN_SECRET"],
        "EGRESS_ALLOWED_HOSTS": "127.0.0.1:*",
    }
    proc = start_process(voice_server_process(state_dir / "run", port=port, env=env))
    try:
        yield VoiceServer(f"http://127.0.0.1:{port}", spool, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
async def fake_carrier() -> AsyncIterator[FakeCarrier]:
    async with running_fake_carrier() as carrier:
        yield carrier


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
async def owner(backend_url: str, http: httpx.AsyncClient) -> tuple[str, str]:
    """One organisation for the voice tests: (access token, org id). Its agents may use their own endpoints (the
    degradation tests point them at stand-ins)."""
    token, org_id = await register(http, backend_url, "voice-tests")
    allowed = await http.patch(f"{backend_url}/api/v1/org", json={"allow_custom_endpoints": True},
                               headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200, allowed.text
    return token, org_id


async def make_line(http: httpx.AsyncClient, backend_url: str, fake_carrier: FakeCarrier, owner: tuple[str, str],
                    carrier: str, **overrides: object) -> SimLine:
    config = {**TEST_AGENT, **overrides}
    line = await provision_line(http, backend_url, carrier=carrier,  # type: ignore[arg-type]
                                fake_carrier=fake_carrier, agent_config=config,
                                access_token=owner[0], org_id=owner[1],
                                account=fake_carrier_account(fake_carrier, carrier))
    return line


def fake_carrier_account(fake: FakeCarrier, carrier: str):  # type: ignore[no-untyped-def]
    """One carrier account per carrier for the test organisation (credentials are per org and carrier)."""
    for (c, _), account in fake.accounts.items():
        if c == carrier:
            return account
    import secrets

    from voice_server.testing.simulator import CarrierAccount

    account_id = ("AC" + secrets.token_hex(16)) if carrier == "twilio" else ("MA_" + secrets.token_hex(8).upper())
    account = CarrierAccount(carrier, account_id, secrets.token_hex(16))  # type: ignore[arg-type]
    fake.accounts[(carrier, account_id)] = account
    return account


@pytest.fixture(scope="session")
async def twilio_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                      fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """Greeting NOT protected (so it can be barged into), short answers, hang-up after 2 s of silence."""
    return await make_line(http, backend_url, fake_carrier, owner, "twilio",
                           interruption={"protect_greeting": False, "min_words": 1})


@pytest.fixture(scope="session")
async def vobiz_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                     fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """Greeting protected from barge-in (the default)."""
    return await make_line(http, backend_url, fake_carrier, owner, "vobiz")


@pytest.fixture(scope="session")
def caller_audio(tts_url: str) -> dict[str, bytes]:
    """The caller's phrases as 8 kHz PCM, synthesised by the real TTS server (Piper)."""
    return {key: synthesize(tts_url, text) for key, text in PHRASES.items()}


@pytest.fixture(scope="session")
async def patient_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                       fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """Greeting not protected, and only three words or more count as a barge-in."""
    return await make_line(http, backend_url, fake_carrier, owner, "twilio",
                           interruption={"protect_greeting": False, "min_words": 3,
                                         "false_interruption_timeout_s": 0.8})


@pytest.fixture(scope="session")
async def end_call_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                        fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """A single-purpose agent whose every reply is the end_call tool (llm.tool_choice), so the real LLM server
    calls it deterministically (grammar-constrained). Long silence timeout: only the tool may end the call."""
    return await make_line(http, backend_url, fake_carrier, owner, "twilio",
                           system_prompt="You end phone calls politely.",
                           llm={"max_tokens": 40, "temperature": 0.2, "tool_choice": "end_call"},
                           silence={"reminder_after_s": 60.0, "max_reminders": 0})


@pytest.fixture(scope="session")
async def transfer_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                        fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """A routing agent: every reply is a blind transfer_call to its one target."""
    return await make_line(http, backend_url, fake_carrier, owner, "twilio",
                           system_prompt="You route callers to the billing team.",
                           llm={"max_tokens": 100, "temperature": 0.2, "tool_choice": "transfer_call"},
                           enable_end_call=False,
                           transfer_targets=[{"name": "Billing", "phone_number": "+14155550142", "mode": "blind"}],
                           silence={"reminder_after_s": 60.0, "max_reminders": 0})


@pytest.fixture(scope="session")
async def short_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                     fake_carrier: FakeCarrier, owner: tuple[str, str]) -> SimLine:
    """The shortest maximum duration the config allows (30 s); silence alone never ends the call first."""
    return await make_line(http, backend_url, fake_carrier, owner, "vobiz", max_duration_s=30,
                           silence={"reminder_after_s": 60.0, "max_reminders": 0})


def _line_maker(carrier: str, backend_url: str, http: httpx.AsyncClient, fake_carrier: FakeCarrier,
                owner: tuple[str, str]):  # type: ignore[no-untyped-def]
    async def make(**overrides: object) -> SimLine:
        return await make_line(http, backend_url, fake_carrier, owner, carrier, **overrides)

    return make


@pytest.fixture
def twilio_line_with(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                     fake_carrier: FakeCarrier, owner: tuple[str, str]):  # type: ignore[no-untyped-def]
    """Provisions a Twilio line for a one-off agent: TEST_AGENT with the given config overrides."""
    return _line_maker("twilio", backend_url, http, fake_carrier, owner)


@pytest.fixture
def make_vobiz_line(voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient,
                    fake_carrier: FakeCarrier, owner: tuple[str, str]):  # type: ignore[no-untyped-def]
    """The same for a Vobiz line."""
    return _line_maker("vobiz", backend_url, http, fake_carrier, owner)


@pytest.fixture
def simulate(voice_server: VoiceServer, fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> Simulate:
    """Places a simulated inbound call on a line (the telephony simulator: a test double of the carrier) and
    returns its report. Hang-ups and transfers the agent makes through the carrier API reach the call."""

    async def place(line: SimLine, script: CallScript, vobiz_format: str | None = None,
                    from_number: str = "+14155550100") -> CallReport:
        if line.carrier == "twilio":
            answer, status = f"{voice_server.url}/twilio/voice", f"{voice_server.url}/twilio/status"
        else:
            answer = f"{voice_server.url}/vobiz/answer" + (f"?format={vobiz_format}" if vobiz_format else "")
            status = f"{voice_server.url}/vobiz/hangup"
        sim = SimulatedCall(carrier=line.carrier, answer_url=answer, account=line.account, from_number=from_number,
                            to_number=line.number, script=script, http=http, status_callback_url=status)
        fake_carrier.register_inbound(sim)
        return await sim.run()

    return place
