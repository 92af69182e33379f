"""What the outbox applier's delete of applied events costs against the size of the outbox (FerretDB 1.24 on
PostgreSQL, the local default): why the backend at 500 req/s was bistable (BENCHMARKS.md "Backend: why the outbox
applier falls behind and stays behind"), and what reading a backlog lane by lane changes.

After each batch the applier deletes the events it applied with one `delete_many({"_id": {"$in": ids}})`. FerretDB
1.x pushes only equality filters down to PostgreSQL, so that delete reads and decodes every row of the outbox: its
cost grows with the backlog, not with the batch. Measured beside it: one `DeleteOne({"_id": id})` per event in one
bulk write (pushed down, but a statement each), and the applier's backlog mode (services/call_projection.py): the
batch read as one lane (`find({"lane": n}).limit(batch)`) and deleted with `{"lane": n, "_id": {"$in": ids}}`, so
both read one lane. The `$in` and lane rows time the batch's read and its delete together, as the applier pays
them per batch. CPU is FerretDB's and PostgreSQL's, from /proc (10 ms ticks).

Usage: .venv/bin/python bench/outbox_delete_bench.py   (writes bench/results/outbox_delete.json)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient, DeleteOne  # noqa: E402

from backend.db.collections import outbox_lane  # noqa: E402
from bench.backend_load import cpu_seconds, family_cpu_seconds, start_stack, stop_stack  # noqa: E402
from bench.provenance import machine  # noqa: E402

# (rows in the outbox, batch size): a keeping-up applier's batches, then a backlog's.
CASES = [(100, 100), (500, 100), (2000, 100), (2000, 2000), (5000, 2000), (20000, 2000)]
REPEATS = 2


async def one_batch(outbox: Any, how: str, ids: list[str], batch: int) -> int:
    """Deletes one batch the way `how` says; returns the rows deleted."""
    if how == "bulk DeleteOne":
        return (await outbox.bulk_write([DeleteOne({"_id": i}) for i in ids[:batch]], ordered=False)).deleted_count
    query = {} if how == "$in" else {"lane": outbox_lane(ids[0][:8])}
    read = [d["_id"] async for d in outbox.find(query).limit(batch)]
    return (await outbox.delete_many({**query, "_id": {"$in": read}})).deleted_count


async def measure(uri: str, db_cpu: Callable[[], float]) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    outbox = client["outbox_delete_bench"]["outbox"]
    await outbox.create_index("lane")  # as the backend declares it (PostgreSQL gets its GIN twin)
    rows = []
    try:
        for size, batch in CASES:
            for how in ["$in", "bulk DeleteOne", "lane"] * REPEATS:
                if how == "bulk DeleteOne" and size > 5000:
                    continue  # seconds per batch already at 5,000
                await outbox.delete_many({})
                ids = [uuid.uuid4().hex for _ in range(size)]
                await outbox.insert_many([{"_id": i, "kind": "call", "call_id": i[:8], "lane": outbox_lane(i[:8]),
                                           "event_json": "x" * 400} for i in ids])
                cpu, started = db_cpu(), time.perf_counter()
                deleted = await one_batch(outbox, how, ids, batch)
                wall_ms = (time.perf_counter() - started) * 1000
                row = {"outbox_rows": size, "deleted": deleted, "how": how, "wall_ms": round(wall_ms, 1),
                       "db_cpu_ms": round((db_cpu() - cpu) * 1000), "wall_ms_per_event": round(wall_ms / deleted, 3)}
                print(row, flush=True)
                rows.append(row)
    finally:
        await client.close()
    return rows


def main() -> None:
    stack = start_stack(db="postgresql")
    try:
        def db_cpu() -> float:
            return cpu_seconds(stack.ferretdb_pid or 0) + family_cpu_seconds(stack.postgres_pid or 0)

        rows = asyncio.run(measure(stack.mongodb_uri, db_cpu))
    finally:
        stop_stack(stack)
    out = ROOT / "bench" / "results" / "outbox_delete.json"
    out.write_text(json.dumps({"benchmark": "outbox_delete", "machine": machine(), "rows": rows}, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
