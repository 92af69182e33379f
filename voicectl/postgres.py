"""A local PostgreSQL cluster for FerretDB's `postgresql` handler (FERRETDB_BACKEND=postgresql).

Why: FerretDB 1.x on SQLite has one writer and scans a table for every update or delete; on PostgreSQL it uses the
`_id` index and row locks. voicectl starts the machine's own PostgreSQL server binaries (Debian: `apt-get install
postgresql`), nothing is downloaded, and the cluster belongs to this run's state folder.

FerretDB 1.24 pushes a find's equality down as `_jsonb->'field' @> value`, which no btree index serves: every find
by `_id` (and by any indexed field) scanned its whole table, so a campaign's per-dial reads grew with its contact
list and its marks (at 1000 contacts a find by `_id` took 2.7 ms of PostgreSQL time against 0.2 ms for an update
by `_id`, which FerretDB writes as `=` and the btree serves). Two things make those finds use an index: an event
trigger gives every btree index FerretDB creates on top-level fields (the `_id` index of each collection and every
index the backend declares) a GIN twin on the same expressions, which serves `@>`; and `plan_cache_mode =
force_custom_plan`, because FerretDB sends the field name as a statement parameter, and only a plan made for the
actual parameters can match the index's expression (PostgreSQL's generic plans after the fifth execution cannot).

The server listens on no TCP port, only on a Unix socket inside its data folder (mode 0700), so trust authentication
lets in only that folder's owner (and root). PostgreSQL refuses to run as root: under root the cluster runs as the
`postgres` system user and lives in that user's home, keyed by the state folder, because root's state folder (in
/root or a pytest temp folder) is not reachable by another user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from voicectl.procs import ManagedProcess, ServiceError, as_user

SUPERUSER = "voiceagent"
DATABASE = "ferretdb"
SOCKET_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the socket folder is this cluster's own
_SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes
DEBIAN_ROOT = Path("/usr/lib/postgresql")  # Debian's <major>/bin folders
# FerretDB's pgx pool defaults to 50 connections, and a FerretDB command inside a transaction can wait for a second
# connection from the same pool: with 50 commands in flight (a loaded backend has up to 100 per MongoDB client) every
# connection waited on another and nothing moved for 90 s (bench/backend_load.py at 100 req/s, seen three times).
# Room for two connections per client command keeps the pool from running dry; PostgreSQL opens them only when used.
FERRETDB_POOL_CONNECTIONS = 220

# Installed in FerretDB's database at every start (idempotent; the backfill covers tables made before it existed).
# A GIN twin (jsonb_path_ops, the smallest GIN for `@>`) for each btree index over `_jsonb -> 'field'` expressions;
# nested fields are skipped (FerretDB's pushdown for them is `#>`, which the twin would not serve). fastupdate off:
# no pending list for finds to scan and no flush stall on a random insert.
FERRETDB_INDEX_TWINS_SQL = r"""
CREATE OR REPLACE FUNCTION voiceagent_gin_twin(idx oid) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  info record;
  expr text;
  cols text[] := '{}';
BEGIN
  SELECT i.indrelid, i.indnkeyatts, c.relname, a.amname INTO info
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
   WHERE i.indexrelid = idx;
  IF NOT FOUND OR info.amname <> 'btree' THEN
    RETURN;
  END IF;
  FOR k IN 1..info.indnkeyatts LOOP
    expr := pg_get_indexdef(idx, k, true);
    IF expr ~ '^\(?_jsonb -> ''[^'']+''::text\)?$' THEN
      cols := cols || format('(%s) jsonb_path_ops', expr);
    END IF;
  END LOOP;
  IF cardinality(cols) > 0 THEN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s) WITH (fastupdate = off)',
                   left(regexp_replace(info.relname, '_idx$', ''), 59) || '_gin', info.indrelid::regclass,
                   array_to_string(cols, ', '));
  END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION voiceagent_gin_twins() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM voiceagent_gin_twin(objid) FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index';
END
$fn$;
DROP EVENT TRIGGER IF EXISTS voiceagent_gin_twins;
CREATE EVENT TRIGGER voiceagent_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION voiceagent_gin_twins();
SELECT count(voiceagent_gin_twin(i.indexrelid)) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema');
"""


def server_bin_dir() -> Path:
    """The folder with initdb and postgres: the newest /usr/lib/postgresql/<major>/bin (Debian), else PATH."""

    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else 0

    candidates = sorted(DEBIAN_ROOT.glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise ServiceError(
        "FERRETDB_BACKEND=postgresql needs PostgreSQL's server programs (initdb, postgres), found neither in "
        "/usr/lib/postgresql/*/bin nor on PATH. Install them (Debian/Ubuntu: `sudo apt-get install postgresql`) "
        "or set FERRETDB_BACKEND=sqlite."
    )


def postgres_os_user() -> pwd.struct_passwd | None:
    """Whom PostgreSQL runs as: None (this user), or the `postgres` system user when voicectl is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError("PostgreSQL cannot run as root and there is no `postgres` system user to run it as "
                           "(Debian's postgresql package creates one); run voicectl as an ordinary user.") from None


@dataclass
class PostgresCluster:
    state: Path
    settings: Mapping[str, str] = field(default_factory=dict)  # extra `-c name=value` server settings
    throwaway: bool = False  # tests and benchmarks: a cluster kept outside the state folder is removed at stop

    def __post_init__(self) -> None:
        self.os_user = postgres_os_user()

    @property
    def data_dir(self) -> Path:
        if self.os_user is None:
            return self.state / "postgres"
        key = hashlib.sha256(str(self.state.resolve()).encode()).hexdigest()[:16]
        return Path(self.os_user.pw_dir) / "voiceagent" / key

    @property
    def url(self) -> str:
        """FerretDB's --postgresql-url: the cluster's socket folder as pgx's `host` parameter."""
        return (f"postgres://{SUPERUSER}@/{DATABASE}?host={quote(str(self.data_dir), safe='/')}"
                f"&pool_max_conns={FERRETDB_POOL_CONNECTIONS}")

    @property
    def owner(self) -> str | None:
        return self.os_user.pw_name if self.os_user else None

    def _run(self, argv: list[str], stdin: str | None = None) -> None:
        res = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=self.data_dir.parent,  # noqa: S603
                             check=False, **as_user(self.owner))
        if res.returncode != 0:
            raise ServiceError(f"`{' '.join(argv[:2])} …` failed:\n{(res.stdout + res.stderr)[-3000:]}")

    def ensure_initialised(self) -> None:
        """initdb and the FerretDB database, once per state folder."""
        data = self.data_dir
        socket = data / f".s.PGSQL.{SOCKET_PORT}"
        if len(str(socket)) > _SOCKET_PATH_MAX:
            raise ServiceError(f"PostgreSQL's socket path {socket} is too long for a Unix socket; "
                               "use a shorter VOICEAGENT_STATE_DIR.")
        if (data / "PG_VERSION").exists():
            return
        bins = server_bin_dir()
        if data.exists():
            shutil.rmtree(data)  # a half-made cluster from an interrupted initdb
        data.mkdir(parents=True, mode=0o700)
        if self.os_user is not None:
            os.chown(data, self.os_user.pw_uid, self.os_user.pw_gid)
        # UTF8 with the C locale: what FerretDB accepts and the fastest to compare. -N: no fsync of the new files.
        self._run([str(bins / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                   "--locale=C", "-N", "--no-instructions"])
        self._run([str(bins / "postgres"), "--single", "-D", str(data), "-j", "postgres"],
                  stdin=f"CREATE DATABASE {DATABASE};\n")

    def process(self, run_dir: Path) -> ManagedProcess:
        bins = server_bin_dir()
        settings = {"listen_addresses": "", "unix_socket_directories": str(self.data_dir), "port": str(SOCKET_PORT),
                    "max_connections": str(FERRETDB_POOL_CONNECTIONS + 20), "plan_cache_mode": "force_custom_plan",
                    **self.settings}
        argv = [str(bins / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        ready = [str(bins / "pg_isready"), "-q", "-h", str(self.data_dir), "-p", str(SOCKET_PORT), "-U", SUPERUSER,
                 "-d", DATABASE]
        return ManagedProcess("postgres", argv, run_dir, cwd=self.data_dir, run_as=self.owner,
                              ready=lambda: subprocess.run(ready, check=False).returncode == 0)  # noqa: S603

    def index_for_ferretdb(self) -> None:
        """Installs the GIN twins' trigger (see the module docstring) once the server is up, before FerretDB."""
        self.psql(FERRETDB_INDEX_TWINS_SQL)

    def psql(self, sql: str) -> str:
        """Runs SQL as the superuser and returns its rows as `|`-separated lines (start-up setup, benchmarks' stats)."""
        argv = [str(server_bin_dir() / "psql"), "-X", "-A", "-t", "-h", str(self.data_dir), "-p", str(SOCKET_PORT),
                "-U", SUPERUSER, "-d", DATABASE, "-c", sql]
        res = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if res.returncode != 0:
            raise ServiceError(f"psql failed: {res.stderr.strip()}")
        return res.stdout

    def remove_if_throwaway(self) -> None:
        if self.throwaway and self.os_user is not None and re.fullmatch(r"[0-9a-f]{16}", self.data_dir.name):
            shutil.rmtree(self.data_dir, ignore_errors=True)
