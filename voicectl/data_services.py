"""The local data stack: FerretDB (MongoDB wire protocol) and MinIO, both real servers.

FerretDB stores into SQLite files (FERRETDB_BACKEND=sqlite) or into a PostgreSQL cluster that voicectl starts from the
machine's PostgreSQL (FERRETDB_BACKEND=postgresql, voicectl/postgres.py). When MONGODB_URI or S3_ENDPOINT is already
set, that part is taken as external and nothing is started for it.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from voicectl.binaries import FERRETDB, MINIO
from voicectl.postgres import PostgresCluster
from voicectl.procs import ManagedProcess, ServiceError, free_port, http_ok, tcp_ok

DEFAULT_FERRETDB_PORT = 27117
FERRETDB_BACKENDS = ("sqlite", "postgresql")
DEFAULT_FERRETDB_BACKEND = "postgresql"  # what the local FerretDB stores into unless FERRETDB_BACKEND says otherwise
# (PostgreSQL won both the dialer and the backend benchmarks: BENCHMARKS.md, issue 21 "GC pauses and grouped billing")
DEFAULT_MINIO_PORT = 9100
LOCAL_KMS_KEY_ID = "voiceagent-recordings"


class LocalDataSettings(BaseSettings):
    """What voicectl reads for the local data services (environment, then .env)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    ferretdb_backend: str = DEFAULT_FERRETDB_BACKEND


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def write_env_file(path: Path, values: dict[str, str], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{k}={v}\n" for k, v in values.items())
    path.write_text(f"# {header}\n{body}")
    path.chmod(0o600)


def ensure_dev_secrets(state: Path) -> dict[str, str]:
    """Random per-checkout dev secrets, generated once into the state folder (never committed)."""
    path = state / "dev-secrets.env"
    values = read_env_file(path)
    wanted = {
        "S3_ACCESS_KEY": lambda: "dev" + secrets.token_hex(6),
        "S3_SECRET_KEY": lambda: secrets.token_urlsafe(24),
        "JWT_SECRET": lambda: secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": lambda: secrets.token_urlsafe(32),
        "SERVICE_TOKEN_SECRET": lambda: secrets.token_urlsafe(48),
        "CALL_TOKEN_SECRET": lambda: secrets.token_urlsafe(48),
        # MinIO's KMS key ("name:base64 of 32 bytes") that encrypts recordings at rest (S3_SSE_KMS_KEY_ID names it).
        "MINIO_KMS_SECRET_KEY": lambda: f"{LOCAL_KMS_KEY_ID}:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    }
    changed = False
    for key, make in wanted.items():
        if key not in values:
            values[key] = make()
            changed = True
    if changed:
        write_env_file(path, values, "Generated dev defaults for this checkout. Do not commit; delete to regenerate.")
    return values


@dataclass
class DataServices:
    state: Path
    ferretdb_port: int = DEFAULT_FERRETDB_PORT
    minio_port: int = DEFAULT_MINIO_PORT
    external_mongo: str | None = None
    external_s3: str | None = None
    ferretdb_backend: str = DEFAULT_FERRETDB_BACKEND
    # PostgreSQL server settings (`-c name=value`), e.g. a benchmark's pg_stat_statements.
    postgres_settings: dict[str, str] = field(default_factory=dict)
    # Tests and benchmarks: free ports, and a cluster kept outside the state folder is removed at stop.
    ephemeral: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ferretdb_backend not in FERRETDB_BACKENDS:
            raise ServiceError(f"FERRETDB_BACKEND={self.ferretdb_backend!r}: choose one of {', '.join(FERRETDB_BACKENDS)}.")
        self.postgres = PostgresCluster(self.state, self.postgres_settings, throwaway=self.ephemeral)

    @classmethod
    def from_env(cls, state: Path, ephemeral_ports: bool = False) -> DataServices:
        return cls(
            state=state,
            ferretdb_backend=LocalDataSettings().ferretdb_backend.strip().lower() or DEFAULT_FERRETDB_BACKEND,
            ephemeral=ephemeral_ports,
            ferretdb_port=free_port() if ephemeral_ports else int(os.environ.get("FERRETDB_PORT", DEFAULT_FERRETDB_PORT)),
            minio_port=free_port() if ephemeral_ports else int(os.environ.get("MINIO_PORT", DEFAULT_MINIO_PORT)),
            external_mongo=os.environ.get("MONGODB_URI") or None,
            external_s3=os.environ.get("S3_ENDPOINT") or None,
        )

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    def _ferretdb(self) -> ManagedProcess:
        data = self.state / "ferretdb"
        data.mkdir(parents=True, exist_ok=True)
        storage = (["--handler=sqlite", f"--sqlite-url=file:{data}/"] if self.ferretdb_backend == "sqlite" else
                   ["--handler=postgresql", f"--postgresql-url={self.postgres.url}"])
        argv = [
            str(FERRETDB.ensure()),
            *storage,
            f"--listen-addr=127.0.0.1:{self.ferretdb_port}",
            f"--state-dir={data}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=warn",
        ]
        return ManagedProcess("ferretdb", argv, self.run_dir, ports=[self.ferretdb_port],
                              ready=lambda: tcp_ok(self.ferretdb_port))

    def _minio(self, secrets_: dict[str, str]) -> ManagedProcess:
        data = self.state / "minio"
        data.mkdir(parents=True, exist_ok=True)
        console = self.minio_port + 1 if self.minio_port else free_port()
        argv = [str(MINIO.ensure()), "server", str(data), "--quiet",
                "--address", f"127.0.0.1:{self.minio_port}", "--console-address", f"127.0.0.1:{console}"]
        env = {
            "MINIO_ROOT_USER": secrets_["S3_ACCESS_KEY"],
            "MINIO_ROOT_PASSWORD": secrets_["S3_SECRET_KEY"],
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CI_CD": "1",
            "MINIO_KMS_SECRET_KEY": secrets_["MINIO_KMS_SECRET_KEY"],
        }
        return ManagedProcess("minio", argv, self.run_dir, ports=[self.minio_port], env=env,
                              ready=lambda: http_ok(f"http://127.0.0.1:{self.minio_port}/minio/health/live"))

    def env(self) -> dict[str, str]:
        """The variables that point every service at this stack."""
        values = {}
        values["MONGODB_URI"] = self.external_mongo or f"mongodb://127.0.0.1:{self.ferretdb_port}/"
        values["S3_ENDPOINT"] = self.external_s3 or f"127.0.0.1:{self.minio_port}"
        if not self.external_s3:
            values["S3_SSE_KMS_KEY_ID"] = LOCAL_KMS_KEY_ID
        if not self.external_mongo and self.ferretdb_backend == "sqlite":
            values["OUTBOX_LANE_READS"] = "false"  # FerretDB on SQLite serves no equality but `_id` from an index
        return values

    def start(self) -> dict[str, str]:
        self.state.mkdir(parents=True, exist_ok=True)
        dev = ensure_dev_secrets(self.state)
        try:
            if not self.external_mongo and self.ferretdb_backend == "postgresql":
                self.postgres.ensure_initialised()
                proc = self.postgres.process(self.run_dir)
                proc.start()
                self.processes.append(proc)
                self.postgres.index_for_ferretdb()
            if not self.external_mongo:
                proc = self._ferretdb()
                proc.start()
                self.processes.append(proc)
            if not self.external_s3:
                proc = self._minio(dev)
                proc.start()
                self.processes.append(proc)
        except Exception:
            self.stop()
            raise
        values = self.env()
        write_env_file(self.state / "services.env", values, "Written by voicectl: where the local data services listen.")
        return values

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self.postgres.remove_if_throwaway()

    def stop_recorded(self) -> list[str]:
        """Stops services recorded in the state folder's pid files (from another voicectl)."""
        stopped = []
        for name in ("minio", "ferretdb", "postgres"):
            proc = ManagedProcess(name, [], self.run_dir)
            if proc.running_pid() is not None:
                proc.stop()
                stopped.append(name)
        return stopped
