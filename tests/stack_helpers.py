"""Starting the platform's real servers for tests (shared by tests/speech, tests/voice and others).

A unique module name: tests/ is not a package, and conftest.py files put their folders on sys.path.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts

from voice_server.testing.fake_carrier import FakeCarrier
from voicectl.launch import asr_process
from voicectl.procs import ManagedProcess, free_port, http_ok
from voicectl.speech_auth import speech_headers


@dataclass(frozen=True)
class AsrServer:
    address: str
    health_url: str
    proc: ManagedProcess


def server_env(state: Path, **extra: str) -> dict[str, str]:
    return {"VOICEAGENT_STATE_DIR": str(state), "LOG_JSON": "true", "LOG_LEVEL": "INFO", **extra}


# Every server the session started: a failed test's report shows what their logs said meanwhile (tests/conftest.py),
# since CI keeps only the console output.
STARTED: list[ManagedProcess] = []


def start_process(proc: ManagedProcess, timeout_s: float = 120.0) -> ManagedProcess:
    proc.start_timeout = timeout_s
    proc.start()
    STARTED.append(proc)
    return proc


def run_asr(speech_state: Path, name: str, **extra: str) -> Iterator[AsrServer]:
    port, health = free_port(), free_port()
    proc = start_process(asr_process(speech_state / name, port=port, health_port=health,
                                     env=server_env(speech_state, **extra)))
    try:
        yield AsrServer(f"127.0.0.1:{port}", f"http://127.0.0.1:{health}", proc)
    finally:
        proc.stop()


def backend_process(run_dir: Path, *, port: int, env: dict[str, str], name: str = "backend",
                    ready_path: str = "/health") -> ManagedProcess:
    """The backend as a real uvicorn process (not started). `ready_path` /health/live does not wait for MongoDB."""
    return ManagedProcess(
        name, [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--no-access-log"],
        run_dir, ports=[port], env=env, ready=lambda: http_ok(f"http://127.0.0.1:{port}{ready_path}"),
        start_timeout=120.0)


def run_backend(state: Path, name: str, env: dict[str, str]) -> Iterator[str]:
    """The backend on a free port (its own MONGODB_DB from `env`), started and stopped; yields its base URL."""
    port = free_port()
    proc = start_process(backend_process(state / "run", port=port, env=env, name=name))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@contextlib.asynccontextmanager
async def running_fake_carrier() -> AsyncIterator[FakeCarrier]:
    """The documented-protocol stand-in for Twilio's and Vobiz's REST APIs, on a free port."""
    carrier = FakeCarrier([])
    await carrier.start(free_port())
    try:
        yield carrier
    finally:
        await carrier.stop()


def http_routes(app: Any) -> list[tuple[str, str, list[str]]]:
    """(method, path template, tags) of every HTTP route of a FastAPI app, included routers flattened (FastAPI
    0.16x keeps them as _IncludedRouter entries in app.routes)."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        methods = getattr(route, "methods", None)
        if context.path and methods:
            tags = [str(t) for t in getattr(context, "tags", None) or getattr(route, "tags", None) or []]
            found.extend((method, context.path, tags) for method in sorted(methods) if method != "HEAD")
    return found


def synthesize(tts_url: str, text: str, sample_rate: int = 8000) -> bytes:
    with httpx.Client(timeout=60) as client:
        resp = client.post(f"{tts_url}/v1/audio/speech", headers=speech_headers("tests"),
                           json={"input": text, "sample_rate": sample_rate, "response_format": "pcm"})
        resp.raise_for_status()
        return resp.content


class LocalServer:
    """A real HTTP server (uvicorn) for a small FastAPI app, on a free port, in the test's event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from voicectl.procs import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LocalServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn only exposes a flag
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
