"""Starting the platform's real servers for tests (shared by tests/speech, tests/voice and others).

A unique module name: tests/ is not a package, and conftest.py files put their folders on sys.path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from speech.launch import asr_process
from voicectl.procs import ManagedProcess, free_port


@dataclass(frozen=True)
class AsrServer:
    address: str
    health_url: str
    proc: ManagedProcess


def server_env(state: Path, **extra: str) -> dict[str, str]:
    return {"VOICEAGENT_STATE_DIR": str(state), "LOG_JSON": "true", "LOG_LEVEL": "INFO", **extra}


def start_process(proc: ManagedProcess, timeout_s: float = 120.0) -> ManagedProcess:
    proc.start_timeout = timeout_s
    proc.start()
    return proc


def run_asr(speech_state: Path, name: str, **extra: str) -> Iterator[AsrServer]:
    port, health = free_port(), free_port()
    proc = start_process(asr_process(speech_state / name, port=port, health_port=health,
                                     env=server_env(speech_state, **extra)))
    try:
        yield AsrServer(f"127.0.0.1:{port}", f"http://127.0.0.1:{health}", proc)
    finally:
        proc.stop()
