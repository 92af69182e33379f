"""How to start the voice server as a supervised process (used by `voicectl run`, the tests and the benchmark)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from voicectl.procs import ManagedProcess, http_ok


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
