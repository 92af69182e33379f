"""The whole local platform as one list of processes, started in order and stopped in reverse.

`voicectl run` uses it; each component says how it starts and how to tell it is healthy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voicectl.data_services import DataServices, ensure_dev_secrets
from voicectl.launch import asr_process, embed_process, llm_process, tts_process, voice_server_process
from voicectl.procs import ManagedProcess, http_ok


@dataclass(frozen=True)
class StackPorts:
    backend: int = int(os.environ.get("BACKEND_PORT", 8000))
    voice_server: int = int(os.environ.get("VOICE_SERVER_PORT", 8100))
    asr: int = int(os.environ.get("ASR_PORT", 50051))
    asr_health: int = int(os.environ.get("ASR_HEALTH_PORT", 50052))
    tts: int = int(os.environ.get("TTS_PORT", 8200))
    llm: int = int(os.environ.get("LLM_PORT", 8300))
    embed: int = int(os.environ.get("EMBED_PORT", 8400))


@dataclass(frozen=True)
class Component:
    name: str
    make: Callable[[Path, StackPorts, dict[str, str]], ManagedProcess]
    url: Callable[[StackPorts], str]


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _backend(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(
        "backend",
        _python("uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(ports.backend),
                "--no-access-log", "--loop", "uvloop"),
        # The local platform dials its campaigns from the backend process (DIALER_ENABLED=false to turn it off), and
        # has the demo owner (the backend's default is off; it refuses it on https).
        run_dir, ports=[ports.backend], env={**env, "DIALER_ENABLED": os.environ.get("DIALER_ENABLED", "true"),
                                             "SEED_DEMO": os.environ.get("SEED_DEMO", "true")},
        ready=lambda: http_ok(f"http://127.0.0.1:{ports.backend}/health"),
    )


def _asr(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return asr_process(run_dir, port=ports.asr, health_port=ports.asr_health, env=env)


def _tts(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return tts_process(run_dir, port=ports.tts, env=env)


def _llm(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return llm_process(run_dir, port=ports.llm, env=env)


def _embed(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return embed_process(run_dir, port=ports.embed, env=env)


def _local_llm_wanted() -> bool:
    """The embedded LLM runs unless LLM_BASE_URL points somewhere else (vLLM, Ollama, OpenAI ...)."""
    url = os.environ.get("LLM_BASE_URL", "")
    return not url or url.startswith(f"http://127.0.0.1:{StackPorts().llm}")


def _voice_server(run_dir: Path, ports: StackPorts, env: dict[str, str]) -> ManagedProcess:
    return voice_server_process(run_dir, port=ports.voice_server, env=env)


def components() -> list[Component]:
    """Start order. Speech servers come before the voice server, which needs them."""
    speech = [
        Component("asr", _asr, lambda p: f"127.0.0.1:{p.asr}"),
        Component("tts", _tts, lambda p: f"http://127.0.0.1:{p.tts}"),
    ]
    if _local_llm_wanted():
        speech.append(Component("llm", _llm, lambda p: f"http://127.0.0.1:{p.llm}/v1"))
    if not os.environ.get("EMBEDDINGS_BASE_URL"):  # knowledge-base embeddings, unless pointed elsewhere
        speech.append(Component("embed", _embed, lambda p: f"http://127.0.0.1:{p.embed}/v1"))
    return [*speech, Component("backend", _backend, lambda p: f"http://127.0.0.1:{p.backend}"),
            Component("voice-server", _voice_server, lambda p: f"http://127.0.0.1:{p.voice_server}")]


class LocalStack:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.ports = StackPorts()
        self.data = DataServices.from_env(state)
        self.processes: list[ManagedProcess] = []

    def start(self, only: set[str] | None = None) -> dict[str, str]:
        env = self.data.start()
        # Generated dev secrets go to every child explicitly; values set in the environment win.
        secrets = {k: v for k, v in ensure_dev_secrets(self.state).items() if k not in os.environ}
        env = {**secrets, **env, "VOICEAGENT_STATE_DIR": str(self.state), **self.service_urls()}
        # One machine: knowledge tables in a local folder, no object-store round trip per query (docs/knowledge-base.md).
        env.setdefault("KNOWLEDGE_URI", os.environ.get("KNOWLEDGE_URI", str(self.state / "knowledge")))
        dist = Path(__file__).resolve().parents[1] / "frontend" / "dist"
        if dist.is_dir():
            env.setdefault("FRONTEND_DIST", str(dist))  # the backend serves the built UI at /
        try:
            for comp in components():
                if only and comp.name not in only:
                    continue
                print(f"  starting {comp.name} …", flush=True)
                proc = comp.make(self.data.run_dir, self.ports, env)
                proc.start()
                self.processes.append(proc)
        except Exception:
            self.stop()
            raise
        return env

    def service_urls(self) -> dict[str, str]:
        p = self.ports
        return {
            "BACKEND_URL": f"http://127.0.0.1:{p.backend}",
            "VOICE_SERVER_URL": f"http://127.0.0.1:{p.voice_server}",
            "RIVA_SERVER": f"127.0.0.1:{p.asr}",
            "TTS_URL": f"http://127.0.0.1:{p.tts}",
            "LLM_BASE_URL": os.environ.get("LLM_BASE_URL", f"http://127.0.0.1:{p.llm}/v1"),
            "EMBEDDINGS_BASE_URL": os.environ.get("EMBEDDINGS_BASE_URL", f"http://127.0.0.1:{p.embed}/v1"),
        }

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self.data.stop()
