"""A production-like run of docker-compose.yml's `cpu` profile, without a container engine.

The provision job, the backend and the voice server are started with the commands and the environment compose gives
them (an operator's .env: https public URLs, a metrics token, no demo seed, each service its own MinIO user), only
their hosts readdressed to this test's loopback ports: the session's real FerretDB (without auth: FerretDB here has
none), MinIO, ASR, TTS and LLM servers. In front of them, Debian's nginx serves the built UI with frontend/nginx.conf
rendered as the frontend image's entrypoint renders it (tests/deploy/ui_proxy.py), as an unprivileged user.

A user is registered through the API (there is no demo owner), then Chromium, through nginx only, signs in, creates
an agent in the editor and places a browser test call (a fake microphone asks a question; the socket goes through
nginx's /voice/v1/browser); the call then shows in the call log with its turns and a recording that the voice
server's MinIO user uploaded and the backend's reads. Around it: the demo owner does not exist, /metrics wants its
token, and the internal API and the backend's other ports are not reachable through the proxy.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asr_probe import config_rpcs
from compose_model import OPERATOR_DOTENV, Service, load, readdress
from stack_helpers import AsrServer, free_port
from ui_e2e_helpers import (
    built_frontend,
    chromium_path,
    finished_call,
    read_ui_state,
    run_ui_phase,
    spoken_question_wav,
    write_ui_state,
)
from ui_proxy import NGINX, UiProxy

from voicectl.procs import ManagedProcess, http_ok

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "deploy"


class Stack:
    """The cpu profile's services as processes, their compose environment readdressed to this test's ports."""

    def __init__(self, data_services: dict[str, str], asr: AsrServer, tts_url: str, llm_url: str,
                 state: Path) -> None:
        self.state = state
        self.backend_port, self.voice_port, self.ui_port = free_port(), free_port(), free_port()
        self.dotenv = {
            **OPERATOR_DOTENV,
            **{name: secrets.token_hex(24) for name in OPERATOR_DOTENV if name.endswith(("SECRET", "KEY", "TOKEN"))},
            # The session's MinIO was started with these root keys (tests/conftest.py).
            "MINIO_ROOT_USER": os.environ["S3_ACCESS_KEY"], "MINIO_ROOT_PASSWORD": os.environ["S3_SECRET_KEY"],
            # The speech servers are the session's, which check tokens signed with the session's secret.
            "SERVICE_TOKEN_SECRET": os.environ["SERVICE_TOKEN_SECRET"],
        }
        self.addresses = {
            "minio:9000": data_services["S3_ENDPOINT"], "backend:8000": f"127.0.0.1:{self.backend_port}",
            "voice_server:8100": f"127.0.0.1:{self.voice_port}", "asr:50051": asr.address,
            "tts:8200": tts_url.split("//", 1)[1], "llm:8300": llm_url.split("//", 1)[1],
        }
        self.services = {name: s for name, s in load(self.dotenv).items() if s.started_by("cpu")}
        self.mongodb = {"MONGODB_URI": data_services["MONGODB_URI"], "MONGODB_DB": f"prod_{uuid.uuid4().hex[:8]}"}
        self.procs: list[ManagedProcess] = []

    def env(self, name: str) -> dict[str, str]:
        env = {key: readdress(value, self.addresses) for key, value in self.services[name].environment.items()}
        if "MONGODB_URI" in env:
            env.update(self.mongodb)
        if "VOICE_SPOOL_DIR" in env:
            env["VOICE_SPOOL_DIR"] = str(self.state / "voice-spool")
        # No .env or voicectl dev files: only what compose passes (the processes run in an empty folder).
        return {**env, "VOICEAGENT_STATE_DIR": str(self.state), "PYTHONPATH": str(REPO)}

    def argv(self, service: Service, port: int | None) -> list[str]:
        """Compose's command, on loopback and this test's port."""
        command = list(service.command)
        if port is not None:
            command[command.index("--host") + 1] = "127.0.0.1"
            command[command.index("--port") + 1] = str(port)
        if command[0] == "uvicorn":
            return [sys.executable, "-m", *command]
        assert command[0] == "python", command
        return [sys.executable, *command[1:]]

    def start(self, name: str, port: int | None, health: str | None) -> None:
        proc = ManagedProcess(f"prod-{name}", self.argv(self.services[name], port), self.state / "run",
                              ports=[port] if port else [], env=self.env(name), cwd=self.state,
                              ready=(lambda: http_ok(health)) if health else None, start_timeout=120.0)
        proc.start()
        self.procs.append(proc)

    def provision(self) -> None:
        run = subprocess.run(self.argv(self.services["provision"], None), env=self.env("provision"), cwd=self.state,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture(scope="module")
def stack(data_services: dict[str, str], asr_server: AsrServer, tts_url: str, llm_url: str) -> Iterator[Stack]:
    if not (chromium_path() and shutil.which("node") and Path(NGINX).exists() and shutil.which("envsubst")):
        missing = "needs Debian's chromium, nginx and gettext-base (envsubst), and node"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {missing}")  # a green CI must have run this
        pytest.skip(missing)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="prod-like-"))
    stack = Stack(data_services, asr_server, tts_url, llm_url, state)
    try:
        stack.provision()
        stack.start("backend", stack.backend_port, f"http://127.0.0.1:{stack.backend_port}/health")
        stack.start("voice_server", stack.voice_port, f"http://127.0.0.1:{stack.voice_port}/health")
        yield stack
    finally:
        stack.stop()
        for proc in stack.procs:
            if proc.log_file.exists():
                shutil.copy(proc.log_file, ARTIFACTS / proc.log_file.name)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def ui(stack: Stack) -> Iterator[UiProxy]:
    prefix = Path(tempfile.mkdtemp(prefix="ui-proxy-"))
    env = {key: readdress(value, stack.addresses) for key, value in stack.services["frontend"].environment.items()}
    proxy = UiProxy(prefix, built_frontend(), {**env, "UI_PORT": str(stack.ui_port)})
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()
        shutil.copy(proxy.log, ARTIFACTS / "nginx.log")
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.timeout(900)
def test_a_browser_test_call_through_the_ui_proxy(stack: Stack, ui: UiProxy, tts_url: str,
                                                 asr_server: AsrServer) -> None:
    asked_before = config_rpcs(asr_server)
    email, password = f"owner-{uuid.uuid4().hex[:8]}@example.com", "correct-horse-battery-staple"
    with httpx.Client(base_url=ui.url, timeout=30) as http:
        assert http.get("/health").json()["status"] == "ok"  # the backend, through nginx
        demo = http.post("/api/v1/auth/login", json={"email": "demo@example.com", "password": "demo-password-123"})
        assert demo.status_code == 401, "no demo owner in production"
        created = http.post("/api/v1/auth/register", json={"email": email, "password": password,
                                                           "name": "Olga Owner", "org_name": "Production Dental"})
        assert created.status_code == 201, created.text
        assert "secure" in created.headers.get("set-cookie", "").lower(), "https public URL: secure cookies"
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    write_ui_state(ARTIFACTS, email=email, password=password)
    audio = spoken_question_wav(tts_url, ARTIFACTS / "fake-microphone.wav")
    run_ui_phase(ui.url, "prod", ARTIFACTS, E2E_FAKE_AUDIO=str(audio))
    access_log = ui.log.read_text()
    assert '"GET /voice/v1/browser HTTP/1.1" 101' in access_log, "the call's socket went through nginx"
    assert "token=" not in access_log, "the proxy's access log keeps no tokens"

    call_id = read_ui_state(ARTIFACTS)["testCallId"]
    # STT_MODEL is empty in compose: the voice server asked the ASR server which model to use.
    assert config_rpcs(asr_server) > asked_before
    with httpx.Client(base_url=ui.url, timeout=30) as http:
        token = http.post("/api/v1/auth/login", json={"email": email, "password": password}).json()["access_token"]
        user = {"Authorization": f"Bearer {token}"}
        call = finished_call(http, call_id, user)
        assert call["carrier"] == "browser" and [t["speaker"] for t in call["turns"]][0] == "agent", call
        assert "caller" in [t["speaker"] for t in call["turns"]], call["turns"]
        # Uploaded with the voice server's MinIO user, read with the backend's.
        recording = http.get(f"/api/v1/calls/{call_id}/recording/audio", headers=user)
        assert recording.status_code == 200
        with wave.open(io.BytesIO(recording.content)) as wav:
            assert wav.getnchannels() == 2


def test_internal_surfaces_are_not_reachable_through_the_proxy(stack: Stack, ui: UiProxy) -> None:
    token = stack.dotenv["METRICS_TOKEN"]
    backend = f"http://127.0.0.1:{stack.backend_port}"
    assert httpx.get(f"{backend}/metrics", timeout=10).status_code in (401, 403)
    assert httpx.get(f"{backend}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    with httpx.Client(base_url=ui.url, timeout=10) as http:
        for path in ("/metrics", "/internal/v1/calls/events", "/docs", "/voice/health", "/voice/internal/v1/drain"):
            resp = http.post(path, json={}) if "internal" in path else http.get(path)
            assert "application/json" not in resp.headers.get("content-type", ""), (path, resp.status_code)
            assert "# HELP" not in resp.text, path
