"""FERRETDB_BACKEND=postgresql keeps working: voicectl starts PostgreSQL and FerretDB's `postgresql` handler, and the
backend does real work through them (accounts, agents, call events, the call list), with the data landing in
PostgreSQL. The session's MinIO is reused; only FerretDB and PostgreSQL are started here."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from backend_testkit import backend_settings, call_events, create_agent, post_events, register
from pymongo import AsyncMongoClient

from backend.main import create_app
from voicectl.data_services import DataServices
from voicectl.procs import ServiceError, free_port


@dataclass
class PostgresStack:
    client: httpx.AsyncClient
    services: DataServices
    db_name: str
    mongodb_uri: str


@pytest.fixture(scope="module")
async def pg_stack(data_services: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                   ) -> AsyncIterator[PostgresStack]:
    services = DataServices(state=tmp_path_factory.mktemp("pg-state"), ferretdb_port=free_port(),
                            external_s3=os.environ["S3_ENDPOINT"], ferretdb_backend="postgresql", ephemeral=True)
    env = services.start()
    db_name = f"pgtest_{uuid.uuid4().hex[:8]}"
    try:
        app = create_app(backend_settings(mongodb_uri=env["MONGODB_URI"], mongodb_db=db_name))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield PostgresStack(client, services, db_name, env["MONGODB_URI"])
    finally:
        services.stop()


async def test_backend_stores_accounts_agents_and_calls_in_postgresql(pg_stack: PostgresStack) -> None:
    client = pg_stack.client
    owner = await register(client, "pg")
    agent = await create_agent(client, owner)
    renamed = await client.patch(f"/api/v1/agents/{agent['id']}", json={"name": "Renamed"}, headers=owner.headers)
    assert renamed.status_code == 200, renamed.text
    call_id, events = call_events(owner.org_id, agent_id=agent["id"], turns=2)
    assert await post_events(client, events) == {"accepted": len(events), "duplicates": 0}
    assert await post_events(client, events) == {"accepted": 0, "duplicates": len(events)}  # unique index holds
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["status"] == "completed" and [t["turn_index"] for t in detail["turns"]] == [0, 1]
    page = (await client.get("/api/v1/calls", headers=owner.headers)).json()
    assert [c["id"] for c in page["items"]] == [call_id]
    agents = (await client.get("/api/v1/agents", headers=owner.headers)).json()
    assert [a["name"] for a in agents] == ["Renamed"]
    # FerretDB keeps each MongoDB database as a PostgreSQL schema: the backend's collections are tables there.
    tables = pg_stack.services.postgres.psql(
        f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{pg_stack.db_name}'")
    assert int(tables) > 5


def test_missing_postgresql_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voicectl.postgres.DEBIAN_ROOT", tmp_path)  # no /usr/lib/postgresql/*/bin
    monkeypatch.setenv("PATH", str(tmp_path))
    services = DataServices(state=tmp_path, ferretdb_port=free_port(), external_s3="127.0.0.1:1",
                            ferretdb_backend="postgresql", ephemeral=True)
    with pytest.raises(ServiceError, match="apt-get install postgresql"):
        services.start()


async def test_finds_by_id_and_by_declared_indexes_are_served_by_an_index(pg_stack: PostgresStack) -> None:
    """FerretDB writes a find's equality as `_jsonb->$1 @> $2`, which no btree serves: without the GIN twins (and
    plans made for the actual field name) every find by `_id` scanned its whole table."""
    pg = pg_stack.services.postgres
    schema = pg_stack.db_name
    # Every btree index the backend's collections got over top-level fields (the `_id` index of each, and the
    # indexes it declares at start-up, after FerretDB was running) has its GIN twin.
    rows = pg.psql(f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{schema}'").splitlines()
    defs = dict(row.split("|", 1) for row in rows if row)
    plain = [name for name, d in defs.items()
             if "USING btree" in d and "#>" not in d and ") -> '" not in d and not name.startswith("_ferretdb")]
    assert len(plain) > 20
    assert [name for name in plain if name.removesuffix("_idx") + "_gin" not in defs] == []
    # A collection of 2000 documents: the statement FerretDB prepares for a find by `_id` is an index scan, also
    # after the fifth execution (when PostgreSQL would otherwise switch to a generic plan that cannot use it).
    collection = "lookups"  # letters only: FerretDB names the table after it (plus a hash)
    async with AsyncMongoClient(pg_stack.mongodb_uri) as client:
        await client[schema][collection].insert_many([{"_id": f"d{i}", "n": i} for i in range(2000)])
        assert await client[schema][collection].find_one({"_id": "d1234"}) == {"_id": "d1234", "n": 1234}
    table = pg.psql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}' "
                    f"AND table_name LIKE '{collection}\\_%'").strip()
    plans = pg.psql(f"""ANALYZE "{schema}"."{table}";
        PREPARE find_by_id(text, jsonb) AS SELECT _jsonb FROM "{schema}"."{table}" WHERE _jsonb->$1 @> $2;
        """ + "".join(f"""EXPLAIN (COSTS OFF) EXECUTE find_by_id('_id', '"d{i}"');""" for i in range(7)))
    scans = [line for line in plans.splitlines() if "Scan" in line and "Index" not in line and "Bitmap Heap" not in line]
    assert "Index Scan" in plans and scans == [], plans
