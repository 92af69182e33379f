"""Single MongoDB operations through FerretDB on SQLite and on PostgreSQL, without the backend in between.

Why: the backend and dialer benchmarks (bench/ferretdb_ab.py) mix the database with the backend's own CPU on a
shared 2-core box; this leg isolates the database operations the platform relies on, 20 at a time against a
2,000-document collection: a read by `_id`, an `$inc` by `_id`, an insert, and a sorted first page of 50 by an
unindexed field. Errors are counted (SQLite answers concurrent updates with SQLITE_BUSY), not hidden.

    .venv/bin/python bench/ferretdb_ops.py [--db sqlite|postgresql|both] [--out bench/results/ferretdb_ab_ops.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from voicectl.data_services import DataServices, ensure_dev_secrets  # noqa: E402

DOCS = 2000
CONCURRENCY = 20


async def measure(make: Callable[[int], Awaitable[Any]], n: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(CONCURRENCY)
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        async with gate:
            try:
                await make(i)
            except Exception:  # counted: the figure is what a caller gets
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return {"ops": n, "per_s": round(n / (time.perf_counter() - started), 1), "errors": errors}


async def operations(uri: str) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, maxPoolSize=CONCURRENCY * 2)
    try:
        col = client["ops_bench"]["docs"]
        await col.insert_many([{"_id": i, "org": f"o{i % 10}", "n": 0, "pad": "x" * 400} for i in range(DOCS)])
        return {
            "find_one by _id": await measure(lambda i: col.find_one({"_id": i % DOCS}), 600),
            "update_one $inc by _id": await measure(lambda i: col.update_one({"_id": i % DOCS}, {"$inc": {"n": 1}}),
                                                    600),
            "insert_one": await measure(lambda i: col.insert_one({"org": "o1", "n": i}), 600),
            "find 50 by org, sorted": await measure(
                lambda i: col.find({"org": f"o{i % 10}"}).sort("_id", -1).limit(50).to_list(), 100),
        }
    finally:
        await client.close()


async def run(db: str) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="ferretdb-ops-"))
    ensure_dev_secrets(state)
    services = DataServices(state=state, external_s3="unused:9000", ferretdb_backend=db, ephemeral=True,
                            ferretdb_port=DataServices.from_env(state, ephemeral_ports=True).ferretdb_port)
    env = services.start()
    try:
        load = os.getloadavg()[0]
        return {"database": db, "load_avg_1m_start": round(load, 2), "operations": await operations(env["MONGODB_URI"])}
    finally:
        services.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--out", type=Path, help="write the runs to this JSON file")
    args = parser.parse_args()
    runs = [asyncio.run(run(db)) for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db])]
    for r in runs:
        print(r["database"], json.dumps(r["operations"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"benchmark": "ferretdb_ops", "concurrency": CONCURRENCY, "docs": DOCS,
                                        "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
