"""What the outbox applier's delete of applied events costs against the size of the outbox (FerretDB 1.24 on
PostgreSQL, the local default): why the backend at 500 req/s is bistable (BENCHMARKS.md "Backend: why the outbox
applier falls behind and stays behind").

After each batch the applier deletes the events it applied with one `delete_many({"_id": {"$in": ids}})`. FerretDB
1.x pushes only equality filters down to PostgreSQL, so that delete reads and decodes every row of the outbox: its
cost grows with the backlog, not with the batch. The alternative that pushes down (one `DeleteOne({"_id": id})` per
event in one bulk write) is measured beside it. CPU is FerretDB's and PostgreSQL's, from /proc (10 ms ticks).

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

from bench.backend_load import cpu_seconds, family_cpu_seconds, start_stack, stop_stack  # noqa: E402
from bench.provenance import machine  # noqa: E402

# (rows in the outbox, rows deleted): a keeping-up applier's batches, then a backlog's.
CASES = [(100, 100), (500, 100), (2000, 100), (2000, 2000), (5000, 2000)]
REPEATS = 2


async def measure(uri: str, db_cpu: Callable[[], float]) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    outbox = client["outbox_delete_bench"]["outbox"]
    rows = []
    try:
        for size, batch in CASES:
            for how in ["$in", "bulk DeleteOne"] * REPEATS:
                await outbox.delete_many({})
                ids = [uuid.uuid4().hex for _ in range(size)]
                await outbox.insert_many([{"_id": i, "kind": "call", "call_id": i[:8], "event_json": "x" * 400}
                                          for i in ids])
                cpu, started = db_cpu(), time.perf_counter()
                if how == "$in":
                    deleted = (await outbox.delete_many({"_id": {"$in": ids[:batch]}})).deleted_count
                else:
                    deleted = (await outbox.bulk_write([DeleteOne({"_id": i}) for i in ids[:batch]],
                                                       ordered=False)).deleted_count
                row = {"outbox_rows": size, "deleted": deleted, "how": how,
                       "wall_ms": round((time.perf_counter() - started) * 1000, 1),
                       "db_cpu_ms": round((db_cpu() - cpu) * 1000)}
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
