"""The web UI end to end: the real backend (uvicorn, real FerretDB + MinIO) serving frontend/dist, driven in Debian's
headless Chromium by playwright-core (frontend/e2e/ui-e2e.mjs, run with node).

Flow: register -> agent (every editor tab, two versions) -> phone number + masked carrier credentials -> settings
-> [a call is seeded through the internal API, with a real stereo WAV spoken by Piper uploaded to MinIO, because the
voice server's browser/phone path is exercised by its own suite] -> login -> call log (search, CSV export) -> call
detail (the recording plays, the transcript follows playback) -> analytics -> phone layout -> accept an invitation.
Campaigns: the backend runs its dialer against the fake carrier (a test double of Twilio's REST API, from
voice_server.testing) whose scripted callees are busy / do not answer / fail, so no voice server is needed; one
contact is on the do-not-call list. The wizard (with a CSV rejected for a bad row, then a clean one), live progress
over SSE to completion and the outcome report are checked, and the carrier's own log shows the DNC number was never
dialled.

Every page is screenshotted into test-artifacts/ui/ (look at them).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_helpers import AsrServer, start_process
from ui_e2e_helpers import (
    SeedTurn,
    built_frontend,
    call_events,
    chromium_path,
    finished_call,
    run_ui_phase,
    spoken_question_wav,
    synth_call_recording,
    utcnow,
)

from core.service_auth import mint_service_token
from core.settings import S3Settings
from core.storage import ObjectStore
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.simulator import CarrierAccount
from voicectl.launch import voice_server_process

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
ARTIFACTS = REPO / "test-artifacts" / "ui"
# The Twilio account the UI enters on the phone numbers page; the fake carrier accepts exactly these.
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "e2e-super-secret-auth-token-0123456789"
# Campaign contacts and how the fake carrier's callee at each number behaves.
CAMPAIGN_CALLEES = {"+14155550140": "busy", "+14155550141": "no-answer", "+14155550143": "failed"}
DNC_NUMBER = "+14155550142"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def frontend_dist() -> Path:
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        pytest.skip("frontend dependencies are not installed (cd frontend && npm ci)")
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    if not chromium_path():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return built_frontend()


class CarrierThread:
    """The fake carrier (a Twilio/Vobiz REST test double) on its own event loop, for these synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-carrier", daemon=True)
        self.thread.start()
        self.carrier = FakeCarrier([CarrierAccount(carrier="twilio", account_id=TWILIO_SID, auth_token=TWILIO_TOKEN)])
        for number, outcome in CAMPAIGN_CALLEES.items():
            self.carrier.callees[number] = ScriptedCallee(outcome=outcome)  # type: ignore[arg-type]
        self.url = asyncio.run_coroutine_threadsafe(self.carrier.start(_free_port()), self.loop).result(30)

    def dialled(self) -> list[str]:
        return [c.to_number for c in list(self.carrier.calls.values()) if c.direction != "inbound"]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.carrier.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def fake_carrier() -> Iterator[CarrierThread]:
    carrier = CarrierThread()
    try:
        yield carrier
    finally:
        carrier.stop()


@pytest.fixture(scope="module")
def ui_voice_port() -> int:
    """The voice server's port, known before the backend starts (it builds test-call socket URLs from it)."""
    return _free_port()


@pytest.fixture(scope="module")
def ui_server(data_services: dict[str, str], frontend_dist: Path, fake_carrier: CarrierThread, tts_url: str,
              ui_voice_port: int) -> Iterator[str]:
    """The real backend as its own process, serving the built UI at /; the agent editor's voices come from the real
    TTS server and browser test calls go to the voice server started by `ui_voice_server`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FRONTEND_DIST": str(frontend_dist),
        "MONGODB_DB": f"ui_{uuid.uuid4().hex[:8]}",
        "PUBLIC_BASE_URL": base,
        "CORS_ORIGINS": base,
        "SEED_DEMO": "false",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "WORKER_POLL_INTERVAL_S": "0.05",
        # The backend's own dialer places campaign calls through the fake carrier (credentials set in the UI).
        "DIALER_ENABLED": "true",
        # The carrier REST API is an operator setting: campaign calls go to the fake carrier (a Twilio test double).
        "TWILIO_API_BASE_URL": fake_carrier.url,
        "DIALER_POLL_INTERVAL_S": "0.1",
        "LOG_JSON": "false",
        "TTS_URL": tts_url,
        "VOICE_SERVER_URL": f"http://127.0.0.1:{ui_voice_port}",
    }
    log = (ARTIFACTS / "backend.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"backend exited ({proc.returncode}); see {ARTIFACTS / 'backend.log'}")
            try:
                if httpx.get(f"{base}/health", timeout=2).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("backend did not become healthy in 90 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def ui_voice_server(ui_server: str, ui_voice_port: int, asr_server: AsrServer, tts_url: str, llm_url: str,
                    data_services: dict[str, str], state_dir: Path) -> Iterator[str]:
    """The real voice server (and through it the real ASR, LLM and TTS servers) for the browser test call."""
    env = {
        **data_services, "BACKEND_URL": ui_server, "RIVA_SERVER": asr_server.address, "TTS_URL": tts_url,
        "LLM_BASE_URL": f"{llm_url}/v1", "VOICE_SPOOL_DIR": str(state_dir / "ui-voice-spool"),
        "VOICE_SERVER_ID": "voice-ui-e2e", "LOG_LEVEL": "INFO", "EVENT_RETRY_MAX_S": "2",
        "RECORDING_RETRY_MAX_S": "2", "SERVICE_TOKEN_SECRET": os.environ["SERVICE_TOKEN_SECRET"],
        "CALL_TOKEN_SECRET": os.environ["CALL_TOKEN_SECRET"],
    }
    proc = start_process(voice_server_process(state_dir / "run", port=ui_voice_port, env=env, name="ui-voice-server"))
    try:
        yield f"http://127.0.0.1:{ui_voice_port}"
    finally:
        proc.stop()


def run_phase(base: str, phase: str, **extra_env: str) -> str:
    return run_ui_phase(base, phase, ARTIFACTS, E2E_TWILIO_SID=TWILIO_SID, E2E_TWILIO_TOKEN=TWILIO_TOKEN,
                        E2E_DNC_NUMBER=DNC_NUMBER, **extra_env)


def read_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads((ARTIFACTS / "state.json").read_text())
    return state


def write_state(state: dict[str, Any]) -> None:
    (ARTIFACTS / "state.json").write_text(json.dumps(state, indent=2))


def seed_calls(base: str, state: dict[str, Any]) -> None:
    """What the voice server would report for three calls, plus a real two-channel recording in MinIO."""
    with httpx.Client(base_url=base, timeout=30) as http:
        login = http.post("/api/v1/auth/login", json={"email": state["email"], "password": state["password"]})
        login.raise_for_status()
        user = {"Authorization": f"Bearer {login.json()['access_token']}"}
        org_id = http.get("/api/v1/auth/me", headers=user).json()["org"]["id"]
        agent = http.get(f"/api/v1/agents/{state['agentId']}", headers=user).json()
        service = {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'voice-server')}"}

        turns = [
            SeedTurn("agent", "Hello there! E2E Dental here. How can I help today?"),
            SeedTurn("caller", "Hi, I need to move my cleaning appointment to next week.", latency_ms=None),
            SeedTurn("agent", "Of course. Does Tuesday at ten in the morning work for you?", latency_ms=640.0),
            SeedTurn("caller", "Yes, Tuesday at ten is perfect, thank you."),
            SeedTurn("agent", "Done. You're booked for Tuesday at ten. Goodbye!", latency_ms=910.0),
        ]
        wav, duration = synth_call_recording(turns)
        (ARTIFACTS / "seeded-call.wav").write_bytes(wav)
        now = utcnow()
        main_id, main_events = call_events(org_id, agent["id"], agent["version"], state["number"], turns, duration,
                                           now - timedelta(minutes=10))
        short_turns = [SeedTurn("agent", "Hello!"), SeedTurn("caller", "Wrong number, sorry."),
                       SeedTurn("agent", "No problem, goodbye.", latency_ms=720.0)]
        for i, t in enumerate(short_turns):
            t.start_ms, t.end_ms = 300 + i * 1800, 1500 + i * 1800
        _, short_events = call_events(org_id, agent["id"], agent["version"], state["number"], short_turns, 6.0,
                                      now - timedelta(days=1, hours=2))
        _, missed_events = call_events(org_id, agent["id"], agent["version"], state["number"], [], 0.0,
                                       now - timedelta(days=2), end_reason="no_answer", answered=False)
        ack = http.post("/internal/v1/calls/events", headers=service,
                        json={"events": main_events + short_events + missed_events})
        assert ack.status_code == 200, ack.text

        settings = S3Settings()
        key = f"{org_id}/{main_id}.wav"

        async def upload() -> None:
            store = ObjectStore(settings)
            await store.ensure_bucket()
            await store.put_bytes(key, wav, content_type="audio/wav")

        asyncio.run(upload())
        rec = http.post("/internal/v1/calls/events", headers=service, json={"events": [{
            "type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": main_id,
            "bucket": settings.s3_bucket_recordings, "key": key, "size_bytes": len(wav),
            "duration_s": round(duration, 3), "sample_rate": 16000, "channels": 2,
        }]})
        assert rec.status_code == 200, rec.text

        # Events are applied by the backend's worker: wait until the call log shows everything.
        deadline = time.monotonic() + 30
        while True:
            detail = http.get(f"/api/v1/calls/{main_id}", headers=user).json()
            listed = http.get("/api/v1/calls", headers=user).json()["items"]
            if detail.get("has_recording") and len(detail.get("turns", [])) == len(turns) and len(listed) >= 3:
                break
            assert time.monotonic() < deadline, f"seeded calls not visible: {detail}"
            time.sleep(0.3)

    state.update(callId=main_id, turns=len(turns), seededCalls=3, orgId=org_id)
    write_state(state)


def screenshots() -> list[str]:
    return sorted(p.name for p in ARTIFACTS.glob("*.png"))


@pytest.fixture(scope="module")
def ui_account(ui_server: str) -> dict[str, Any]:
    """The walkthrough's first phase (register, agent, number, credentials, settings), shared by every test here,
    so each test also runs alone."""
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    run_phase(ui_server, "setup")
    state = read_state()
    assert state.get("agentId") and state.get("inviteLink"), state
    return state


@pytest.mark.timeout(900)
def test_ui_walkthrough(ui_server: str, ui_account: dict[str, Any]) -> None:
    seed_calls(ui_server, read_state())
    run_phase(ui_server, "review")
    shots = screenshots()
    assert not [s for s in shots if s.startswith("FAILED")], shots
    assert len(shots) >= 30, shots


@pytest.mark.timeout(600)
def test_ui_campaign_flow(ui_server: str, fake_carrier: CarrierThread, ui_account: dict[str, Any]) -> None:
    bad = ARTIFACTS / "contacts-bad.csv"
    bad.write_text("phone,first_name\n+14155550140,Ada\n4155550141,Bob\nbanana,Eve\n")
    good = ARTIFACTS / "contacts.csv"
    good.write_text("phone,first_name\n+14155550140,Ada\n4155550141,Bob\n+14155550140,Ada again\n"
                    f"{DNC_NUMBER},Dee\n+14155550143,Fay\n")
    run_phase(ui_server, "campaign", E2E_CAMPAIGN_BAD_CSV=str(bad), E2E_CAMPAIGN_CSV=str(good))

    # The carrier's own log: every contact dialled once (one dial per outcome was set), the DNC number never.
    dialled = fake_carrier.dialled()
    assert DNC_NUMBER not in dialled, dialled
    assert sorted(dialled) == sorted(CAMPAIGN_CALLEES), dialled
    report = list(csv.DictReader(io.StringIO((ARTIFACTS / "campaign-report.csv").read_text())))
    assert len(report) == 4, report
    statuses = {row["phone"].lstrip("'"): row["status"] for row in report}
    assert statuses == {"+14155550140": "busy", "+14155550141": "no_answer", "+14155550143": "failed",
                        DNC_NUMBER: "dnc"}, statuses


def dental_agent(base: str, state: dict[str, Any], name: str, **config: Any) -> tuple[dict[str, str], str]:
    """Signs in as the walkthrough's user and creates an agent on the platform's default speech and LLM endpoints
    (the walkthrough's own agent points at made-up ones): the user's headers and the agent's id."""
    with httpx.Client(base_url=base, timeout=30) as http:
        login = http.post("/api/v1/auth/login", json={"email": state["email"], "password": state["password"]})
        login.raise_for_status()
        user = {"Authorization": f"Bearer {login.json()['access_token']}"}
        agent = http.post("/api/v1/agents", headers=user, json={"name": name, "config": {
            "system_prompt": "You are the receptionist of E2E Dental. Answer in one short sentence.",
            "greeting": "Hello and thank you for calling E2E Dental. How can I help you today?",
            "llm": {"max_tokens": 40, "temperature": 0.2}, **config}})
        assert agent.status_code == 201, agent.text
    return user, str(agent.json()["id"])


@pytest.mark.timeout(600)
def test_ui_browser_test_call(ui_server: str, ui_voice_server: str, tts_url: str,
                              ui_account: dict[str, Any]) -> None:
    """A real call from the test-call page: Chromium's fake microphone (a WAV of a spoken question) -> the voice
    server's browser socket -> the phone pipeline (real VAD, STT, LLM, TTS) -> live transcript in the page; keys
    pressed on the page's keypad reach the pipeline as DTMF; then the call is in the call log with its turns and a
    stereo recording."""
    state = read_state()
    user, state["testCallAgentId"] = dental_agent(ui_server, state, "E2E Browser agent",
                                                  silence={"reminder_after_s": 30.0, "max_reminders": 0})
    write_state(state)
    audio = spoken_question_wav(tts_url, ARTIFACTS / "fake-microphone.wav")
    run_phase(ui_server, "testcall", E2E_FAKE_AUDIO=str(audio))

    call_id = read_state()["testCallId"]
    with httpx.Client(base_url=ui_server, timeout=30) as http:
        call = finished_call(http, call_id, user)
        assert call["carrier"] == "browser" and call["end_reason"] == "caller_hangup", call
        speakers = [t["speaker"] for t in call["turns"]]
        assert speakers[0] == "agent" and "caller" in speakers, call["turns"]
        assert "[DTMF 42]" in [t["text"] for t in call["turns"] if t["speaker"] == "caller"], call["turns"]
        recording = http.get(f"/api/v1/calls/{call_id}/recording/audio", headers=user)
        assert recording.status_code == 200
        with wave.open(io.BytesIO(recording.content)) as wav:
            assert wav.getnchannels() == 2 and wav.getframerate() == 16000
    assert not [s for s in screenshots() if s.startswith("FAILED")], screenshots()


@pytest.mark.timeout(600)
def test_ui_run_agent_tests(ui_server: str, ui_voice_server: str, ui_account: dict[str, Any]) -> None:
    """The Tests tab's "Run tests" button: the backend places the agent's saved scenario as a simulated call
    (caller lines from the TTS server, the real pipeline) in the background and the page shows it pass."""
    state = read_state()
    _, state["testsAgentId"] = dental_agent(
        ui_server, state, "E2E Tested agent", silence={"reminder_after_s": 4.0, "max_reminders": 0},
        test_scenarios=[{"name": "asks about Saturday", "caller": [{"say": "Are you open on Saturday?"}],
                         "expect": [{"kind": "reply_contains", "words": ["E2E Dental"]}, {"kind": "call_ended"}]}])
    write_state(state)
    run_phase(ui_server, "agenttests")
    assert not [s for s in screenshots() if s.startswith("FAILED")], screenshots()


@pytest.mark.timeout(600)
def test_ui_live_calls(ui_server: str, ui_account: dict[str, Any]) -> None:
    """A call in progress shows on the Live page; its live view shows turns and a transfer as the voice server
    reports them, then the end; the list empties."""
    state = read_state()
    for marker in ("live-view-open", "live-turn-seen"):
        (ARTIFACTS / marker).unlink(missing_ok=True)
    service = {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'voice-server')}"}
    with httpx.Client(base_url=ui_server, timeout=30) as http:
        login = http.post("/api/v1/auth/login", json={"email": state["email"], "password": state["password"]})
        user = {"Authorization": f"Bearer {login.json()['access_token']}"}
        org_id = http.get("/api/v1/auth/me", headers=user).json()["org"]["id"]
        agent = http.get(f"/api/v1/agents/{state['agentId']}", headers=user).json()
        now = utcnow()
        call_id, events = call_events(org_id, agent["id"], agent["version"], state["number"],
                                      [SeedTurn("agent", "Hello, live caller. How can I help?")], 30.0, now)
        started, ended = events[:-1], events[-1]
        assert http.post("/internal/v1/calls/events", headers=service, json={"events": started}).status_code == 200
        state["liveCallId"] = call_id
        write_state(state)

        def drive() -> None:
            deadline = time.monotonic() + 120
            while not (ARTIFACTS / "live-view-open").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            later = [{"type": "call.turn", "event_id": uuid.uuid4().hex, "call_id": call_id,
                      "at": (now + timedelta(seconds=5)).isoformat(), "turn_index": 1, "speaker": "caller",
                      "text": "I want to talk to a person.", "start_ms": 3000, "end_ms": 4500},
                     {"type": "call.tool", "event_id": uuid.uuid4().hex, "call_id": call_id,
                      "at": (now + timedelta(seconds=6)).isoformat(), "name": "transfer_call", "ok": True,
                      "duration_ms": 35.0}]
            http.post("/internal/v1/calls/events", headers=service, json={"events": later}).raise_for_status()
            while not (ARTIFACTS / "live-turn-seen").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            http.post("/internal/v1/calls/events", headers=service, json={"events": [ended]}).raise_for_status()

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        run_phase(ui_server, "live")
        driver.join(10)
        assert http.get("/api/v1/privacy/retention", headers=user).json() == {
            "recordings_days": 30, "transcripts_days": 90, "metadata_days": 365}
