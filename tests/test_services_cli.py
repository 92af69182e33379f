"""The data-services command: clear messages on a second start or a taken port, and no orphans."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from voicectl.data_services import DataServices
from voicectl.procs import ManagedProcess, ServiceError, free_port, pid_alive

ROOT = Path(__file__).resolve().parents[1]


def _voicectl(state: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "S3_ENDPOINT")}
    env.update({"VOICEAGENT_STATE_DIR": str(state), **(extra_env or {})})
    return subprocess.run([sys.executable, "-m", "voicectl", "services", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _pids(state: Path) -> list[int]:
    return [int(p.read_text()) for p in (state / "run").glob("*.pid")]


def test_second_start_is_refused_clearly_and_down_leaves_no_orphans(tmp_path: Path) -> None:
    ports = {"FERRETDB_PORT": str(free_port()), "MINIO_PORT": str(free_port())}
    first = _voicectl(tmp_path, "up", "--detach", extra_env=ports)
    assert first.returncode == 0, first.stderr
    assert f"MONGODB_URI=mongodb://127.0.0.1:{ports['FERRETDB_PORT']}/" in first.stdout
    pids = _pids(tmp_path)
    local = 3 if DataServices.from_env(tmp_path).ferretdb_backend == "postgresql" else 2  # + PostgreSQL
    assert len(pids) == local and all(pid_alive(p) for p in pids)
    try:
        second = _voicectl(tmp_path, "up", "--detach", extra_env=ports)
        assert second.returncode == 2
        assert "already running" in second.stderr
        assert sorted(_pids(tmp_path)) == sorted(pids)  # nothing new started
        status = _voicectl(tmp_path, "status")
        assert "ferretdb: running" in status.stdout and "minio: running" in status.stdout
    finally:
        down = _voicectl(tmp_path, "down")
    assert down.returncode == 0 and "ferretdb" in down.stdout
    assert not any(pid_alive(p) for p in pids)
    assert _pids(tmp_path) == []


def test_taken_port_gives_clear_message_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        services = DataServices(state=tmp_path, ferretdb_port=free_port(), minio_port=taken)
        with pytest.raises(ServiceError, match=f"port {taken}.*already in use"):
            services.start()
    # FerretDB had started before MinIO failed: it must have been stopped again.
    assert services.processes == []
    assert ManagedProcess("ferretdb", [], tmp_path / "run").running_pid() is None


def test_external_endpoints_start_nothing(tmp_path: Path) -> None:
    services = DataServices(state=tmp_path, external_mongo="mongodb://db.example:27017/", external_s3="s3.example:9000")
    env = services.start()
    assert env == {"MONGODB_URI": "mongodb://db.example:27017/", "S3_ENDPOINT": "s3.example:9000"}
    assert services.processes == []
