"""How to start each service as a supervised process: the voice server and the speech servers (used by
`voicectl run`, the tests and the benchmarks). They live here, not beside the services, so no runtime package imports
the CLI."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from voicectl.procs import ManagedProcess, http_ok
from voicectl.speech_auth import local_service_secret


def _speech_env(env: Mapping[str, str]) -> dict[str, str]:
    """Speech servers need SERVICE_TOKEN_SECRET; the caller's, or the one this process shares with its children."""
    return {"SERVICE_TOKEN_SECRET": local_service_secret(), **env}


def asr_process(run_dir: Path, *, port: int, health_port: int, env: Mapping[str, str] = {}) -> ManagedProcess:  # noqa: B006
    return ManagedProcess(
        "asr",
        [sys.executable, "-m", "speech.asr"],
        run_dir,
        ports=[port, health_port],
        env={**_speech_env(env), "ASR_HOST": "127.0.0.1", "ASR_PORT": str(port), "ASR_HEALTH_PORT": str(health_port)},
        ready=lambda: http_ok(f"http://127.0.0.1:{health_port}/health"),
    )


def tts_process(run_dir: Path, *, port: int, env: Mapping[str, str] = {}) -> ManagedProcess:  # noqa: B006
    return ManagedProcess(
        "tts",
        [sys.executable, "-m", "speech.tts"],
        run_dir,
        ports=[port],
        env={**_speech_env(env), "TTS_HOST": "127.0.0.1", "TTS_PORT": str(port)},
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
    )


def llm_process(run_dir: Path, *, port: int, env: Mapping[str, str] = {}) -> ManagedProcess:  # noqa: B006
    return ManagedProcess(
        "llm",
        [sys.executable, "-m", "speech.llm"],
        run_dir,
        ports=[port],
        env={**_speech_env(env), "LLM_HOST": "127.0.0.1", "LLM_PORT": str(port)},
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
    )


def embed_process(run_dir: Path, *, port: int, env: Mapping[str, str] = {}) -> ManagedProcess:  # noqa: B006
    return ManagedProcess(
        "embed",
        [sys.executable, "-m", "speech.embed"],
        run_dir,
        ports=[port],
        # One BLAS thread: a query is a handful of tokens, and on a shared box more threads only spin.
        env={"OPENBLAS_NUM_THREADS": "1", **_speech_env(env), "EMBED_HOST": "127.0.0.1", "EMBED_PORT": str(port)},
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
    )


def voice_server_process(run_dir: Path, *, port: int, env: Mapping[str, str] = {},  # noqa: B006
                         name: str = "voice-server") -> ManagedProcess:
    values = {"VOICE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **env}
    return ManagedProcess(
        name,
        [sys.executable, "-m", "uvicorn", "--factory", "voice_server.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--loop", "uvloop", "--ws-max-size", "1048576"],
        run_dir,
        ports=[port],
        env=values,
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
        start_timeout=90.0,
    )
