"""Start, watch and stop local server processes (data services, speech servers, backend, voice server).

Every process gets its own session (so a stop reaches its children), a log file in the state folder and a
pid file, which lets a second ``voicectl`` see a stack that is already running instead of starting orphans.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ServiceError(RuntimeError):
    """A clear, user-facing reason why a service could not start."""


def as_user(name: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as system user `name` (voicectl under root starting PostgreSQL)."""
    if name is None:
        return {}
    entry = pwd.getpwnam(name)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback health URL
            return 200 <= resp.status < 300
    except Exception:
        return False


def tcp_ok(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    run_dir: Path
    ports: Sequence[int] = ()
    ready: Callable[[], bool] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    run_as: str | None = None  # a system user to run as (only root can switch)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pid = self.running_pid()
        if pid is not None:
            raise ServiceError(
                f"{self.name} is already running (pid {pid}, state {self.run_dir}). "
                f"Stop it first with `voicectl services down` or use another VOICEAGENT_STATE_DIR."
            )
        for port in self.ports:
            if not port_is_free(port):
                raise ServiceError(
                    f"{self.name}: port {port} on 127.0.0.1 is already in use by another program. "
                    f"Free it or choose another port (see .env.example)."
                )
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - argv built by us
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=str(self.cwd) if self.cwd else None,
            start_new_session=True,
            **as_user(self.run_as),
        )
        log.close()
        self.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._forget()
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode} during start-up; "
                    f"last log lines:\n{self.tail_log()}"
                )
            if self.ready is None or self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} did not become healthy in {self.start_timeout:.0f}s:\n{self.tail_log()}")

    def tail_log(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.proc.pid if self.proc else self.running_pid()
        if pid is None:
            self._forget()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    break
            elif not pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            if self.proc is not None:
                self.proc.wait(timeout=5)
        self._forget()

    def _forget(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
