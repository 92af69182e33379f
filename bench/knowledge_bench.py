"""Knowledge-base benchmark: retrieval quality, retrieval latency at 10k chunks, ingestion throughput, engines.

Starts the embedded embedding server (python -m speech.embed) on a free port unless --embed-url is given, and uses
the platform's own code for everything else (backend/knowledge extract + chunking, core/knowledge embeddings client,
store and retriever):

  * recall@3: the two test documents (tests/knowledge_data: a clinic price list and its policies) are indexed;
    for each of QUESTIONS (paraphrased, 34 of them) the top 3 chunks must include the chunk holding its answer.
  * retrieval latency: the same table padded to 10,000 chunks (filler chunks: word salad over the documents'
    vocabulary with random unit vectors: the engine's work per query does not depend on what the vectors mean),
    then p50/p95 of Retriever.retrieve() (query embedding over HTTP + hybrid vector/BM25 search + fusion), on a
    local folder, on MinIO/S3 read directly, and through the production path: tables in MinIO, searched by a voice
    server's local replica (core/knowledge/replicas.py) at the call's knowledge version. MinIO is the one named by
    S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY, or one started here (--no-s3 skips the MinIO rows). The production
    path embeds the question as the voice server does: in process (int8 ONNX) when the model is the bundled
    MiniLM. bench/knowledge_ab.py compares that path before/after its levers, arms interleaved.
  * ingestion: a generated 100-page text PDF through extract -> chunk -> embed -> store (MinIO) -> index, pages/s.
  * --engines: LanceDB (local, S3 flat, S3 IVF-PQ) against Qdrant's local mode (`pip install qdrant-client`) on
    the same 10k vectors, search only (the decision in docs/knowledge-base.md).

Prints a table, writes bench/results/knowledge.json and the "Knowledge base" section of BENCHMARKS.md.
Usage: .venv/bin/python bench/knowledge_bench.py [--embed-url URL] [--engines] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from lancedb.index import FTS, IvfPq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.knowledge.chunking import chunk_pages  # noqa: E402
from backend.knowledge.extract import Page, extract, kind_of  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from core.agent_config import KnowledgeConfig  # noqa: E402
from core.knowledge.embeddings import Embedder, EmbeddingsClient  # noqa: E402
from core.knowledge.models import ChunkIn  # noqa: E402
from core.knowledge.retriever import Retriever  # noqa: E402
from core.knowledge.settings import KnowledgeSettings  # noqa: E402
from core.knowledge.store import KnowledgeStore  # noqa: E402
from core.storage import ObjectStore  # noqa: E402
from speech.embed.in_process import bundled_query_embedder  # noqa: E402
from voicectl.data_services import DataServices, ensure_dev_secrets  # noqa: E402
from voicectl.launch import embed_process  # noqa: E402
from voicectl.procs import free_port  # noqa: E402
from voicectl.speech_auth import speech_token  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "knowledge.json"
START, END = "<!-- knowledge-bench:start -->", "<!-- knowledge-bench:end -->"
DOCS = ROOT / "tests" / "knowledge_data"
GOALS = {"recall_at_3": 0.9, "retrieval_p95_ms": 30.0}
ORG, KB = "bench", "kb-bench"

# question -> a phrase found only in the chunk that answers it
QUESTIONS: list[tuple[str, str]] = [
    ("How much is a regular check-up?", "routine check-up"),
    ("What do you charge for a cleaning?", "teeth cleaning"),
    ("How long does a scale and polish take?", "forty minutes"),
    ("Price of bitewing x-rays?", "bitewing"),
    ("How much is a panoramic x-ray of the whole mouth?", "panoramic"),
    ("What does a white filling cost?", "composite filling"),
    ("How expensive is a root canal on a back tooth?", "root canal"),
    ("What's the price of a crown?", "porcelain crown"),
    ("How much is teeth whitening in the office?", "whitening session"),
    ("Do you sell whitening kits to use at home?", "take-home whitening"),
    ("How much to pull a tooth?", "simple tooth extraction"),
    ("What does removing a wisdom tooth cost?", "wisdom tooth"),
    ("How much is an implant?", "dental implant"),
    ("Do you do invisible braces and how much are they?", "aligner"),
    ("How much is a check-up for my eight year old?", "children's check-up"),
    ("Is fluoride free for kids?", "fluoride varnish"),
    ("I play rugby, can you make a mouthguard?", "sports mouthguard"),
    ("I grind my teeth at night, what can you do?", "night guard"),
    ("Is there an extra charge for an emergency after hours?", "call-out fee"),
    ("What time do you open on Saturday?", "Saturday from 9 am"),
    ("Are you open on Sundays?", "closed on Sundays"),
    ("Who do I call for a dental emergency at the weekend?", "Doctor Brown"),
    ("What happens if I cancel my appointment late?", "late cancellation"),
    ("Can I pay by American Express?", "American Express"),
    ("Do you take cheques?", "cheques"),
    ("Do you bill Cigna directly?", "Cigna"),
    ("Can I pay for expensive treatment in instalments?", "instalments"),
    ("What should I bring to my first visit?", "photo ID"),
    ("Where can I park my car?", "Maplewood garage"),
    ("Is the clinic wheelchair accessible?", "wheelchair"),
    ("Can my fifteen year old come alone?", "under sixteen"),
    ("I'm scared of the dentist, do you offer laughing gas?", "nitrous oxide"),
    ("How do I get a copy of my x-rays?", "dental records"),
    ("Does anyone there speak Spanish?", "Spanish"),
    ("What is the address of the downtown branch?", "Harbour Street"),
]


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))], 1)


def doc_chunks() -> list[ChunkIn]:
    chunks: list[ChunkIn] = []
    for path in sorted(DOCS.iterdir()):
        kind = kind_of(path.name) or "txt"
        for i, piece in enumerate(chunk_pages(extract(kind, path.read_bytes()))):
            chunks.append(ChunkIn(chunk_id=f"{path.stem}-{i}", kb_id=KB, source_id=path.stem, source_name=path.name,
                                  revision=1, page=piece.number, text=piece.text))
    return chunks


def filler(n: int, dims: int, vocabulary: list[str]) -> tuple[list[ChunkIn], np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [ChunkIn(chunk_id=f"filler-{i}", kb_id=KB, source_id=f"filler-{i // 100}",
                      source_name=f"filler-{i // 100}.pdf", revision=1, page=i % 100 + 1,
                      text=" ".join(rng.choice(vocabulary, 60))) for i in range(n)]
    return chunks, vectors


async def build_store(uri: str, options: dict[str, str], embeddings: EmbeddingsClient,
                      total: int) -> tuple[KnowledgeStore, list[ChunkIn]]:
    store = KnowledgeStore(uri, options)
    chunks = doc_chunks()
    await store.add(ORG, chunks, await embeddings.embed([c.text for c in chunks]))
    if total > len(chunks):
        vocabulary = sorted({w.lower() for c in chunks for w in c.text.split() if w.isalpha()})
        pad, vectors = filler(total - len(chunks), 384, vocabulary)
        await store.add(ORG, pad, vectors)
    await store.finish_source(ORG, "none", 1)  # builds the FTS (and, at 10k, the IVF-PQ) index
    return store, chunks


async def recall(retriever: Retriever, k: int = 3) -> tuple[float, list[dict[str, Any]]]:
    config = KnowledgeConfig(knowledge_base_ids=[KB], top_k=k, score_threshold=0.0)
    misses = []
    hits = 0
    for question, phrase in QUESTIONS:
        found = await retriever.retrieve(ORG, config, question)
        assert found.error is None, found.error
        if any(phrase.lower() in c.text.lower() for c in found.chunks):
            hits += 1
        else:
            misses.append({"question": question, "expected": phrase, "got": [c.text[:80] for c in found.chunks]})
    return round(hits / len(QUESTIONS), 3), misses


async def latency(retriever: Retriever, rounds: int, version: int | None = None) -> dict[str, float]:
    config = KnowledgeConfig(knowledge_base_ids=[KB], top_k=3, score_threshold=0.3)
    questions = [q for q, _ in QUESTIONS]
    for q in questions[:5]:  # warm: caches, index loaded, connections open
        await retriever.retrieve(ORG, config, q, version)
    times = []
    for i in range(rounds):
        found = await retriever.retrieve(ORG, config, questions[i % len(questions)], version)
        assert found.error is None, found.error
        times.append(found.duration_ms)
    return {"n": rounds, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "max_ms": round(max(times), 1)}


def text_pdf(pages: int) -> bytes:
    """A plain PDF with `pages` pages of text (Helvetica), written by hand: no PDF-writing dependency."""
    words = "price policy appointment insurance clinic patient treatment payment parking opening hours".split()
    rng = np.random.default_rng(3)
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for p in range(pages):
        lines = [f"Page {p + 1}. " + " ".join(rng.choice(words, 12)) + "." for _ in range(40)]
        stream = "BT /F1 10 Tf 40 800 Td 12 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


async def replica_latency(embeddings: Embedder, uri: str, options: dict[str, str], folder: str,
                          rounds: int) -> dict[str, float]:
    """The production path: a voice server's store over the MinIO table, with its local replica at version 1."""
    store = KnowledgeStore(uri, options, replica_dir=Path(folder), replica_max_bytes=1 << 30)
    assert store.replicas is not None
    t = time.perf_counter()
    store.prefetch(ORG, 1)  # what a call does when its pipeline is built
    for _ in range(6000):
        if store.replicas.replica_version(store.table_name(ORG)) is not None:
            break
        await asyncio.sleep(0.05)
    copy_s = round(time.perf_counter() - t, 2)
    out = await latency(Retriever(embeddings, store), rounds, version=1)
    # The search alone (query vectors embedded beforehand): what the replica changes; the rest is the embedding.
    questions = [q for q, _ in QUESTIONS]
    vectors = await embeddings.embed(questions)
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        await store.search(ORG, [KB], vectors[i % len(questions)], questions[i % len(questions)], top_k=3,
                           threshold=0.3, tags=[], version=1)
        times.append((time.perf_counter() - t) * 1000)
    assert store.replicas.stats.misses == 0, "every measured query read the local replica"
    return {**out, "search_only_p50_ms": pct(times, 50), "search_only_p95_ms": pct(times, 95),
            "replica_copy_s": copy_s, "replica_bytes": store.replicas.disk_bytes()}


async def ingestion(embeddings: EmbeddingsClient, uri: str, options: dict[str, str]) -> dict[str, float]:
    """The worker's steps (backend/knowledge/ingestion.py) minus its MongoDB bookkeeping."""
    data = text_pdf(100)
    store = KnowledgeStore(uri, options)
    t0 = time.perf_counter()
    pages: list[Page] = await asyncio.to_thread(extract, "pdf", data)
    t_extract = time.perf_counter() - t0
    pieces = chunk_pages(pages)
    rows = [ChunkIn(chunk_id=f"pdf-{i}", kb_id="kb-ingest", source_id="pdf", source_name="hundred.pdf",
                    revision=1, page=c.number, text=c.text) for i, c in enumerate(pieces)]
    t1 = time.perf_counter()
    for start in range(0, len(rows), 32):
        batch = rows[start:start + 32]
        await store.add(ORG, batch, await embeddings.embed([r.text for r in batch]))
    t_embed = time.perf_counter() - t1
    await store.finish_source(ORG, "pdf", 1)
    total = time.perf_counter() - t0
    return {"pages": len(pages), "chunks": len(rows), "pdf_bytes": len(data), "seconds": round(total, 2),
            "pages_per_s": round(len(pages) / total, 2), "extract_s": round(t_extract, 2),
            "embed_and_store_s": round(t_embed, 2), "index_s": round(total - t_extract - t_embed, 2)}


def start_minio(state: Path) -> DataServices:
    """A throwaway MinIO (and FerretDB) when none is named, with the knowledge bucket."""
    for key, value in ensure_dev_secrets(state).items():
        os.environ.setdefault(key, value)
    services = DataServices.from_env(state, ephemeral_ports=True)
    os.environ.update(services.start())
    asyncio.run(ObjectStore(KnowledgeSettings()).ensure_bucket(os.environ.get("S3_BUCKET_KNOWLEDGE", "knowledge")))
    return services


def s3_options() -> tuple[str, dict[str, str]] | None:
    endpoint, key, secret = (os.environ.get(k) for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"))
    if not (endpoint and key and secret):
        return None
    bucket = os.environ.get("S3_BUCKET_KNOWLEDGE", "knowledge")
    return f"s3://{bucket}/bench-{uuid.uuid4().hex[:8]}", {
        "aws_access_key_id": key, "aws_secret_access_key": secret, "aws_endpoint": f"http://{endpoint}",
        "aws_region": "us-east-1", "allow_http": "true"}


def engines(total: int = 10_000, rounds: int = 100) -> dict[str, Any]:
    """Search-only latency (vector top-10 + BM25 top-10 where the engine has it) on the same random vectors."""
    rng = np.random.default_rng(0)
    vocabulary = "price cleaning filling crown whitening parking hours downtown insurance policy fee child".split()
    chunks, vectors = filler(total, 384, vocabulary)
    out: dict[str, Any] = {}
    targets: list[tuple[str, str, dict[str, str]]] = [
        ("lancedb_local_flat", tempfile.mkdtemp(prefix="kb-engines-"), {})]
    if (s3 := s3_options()) is not None:
        targets += [("lancedb_s3_flat", s3[0] + "-flat", s3[1]), ("lancedb_s3_ivfpq", s3[0] + "-ivf", s3[1])]
    for name, uri, options in targets:
        store = KnowledgeStore(uri, options)
        store._add(ORG, chunks, vectors)  # noqa: SLF001 - synchronous in a script
        table = store._table(ORG)  # noqa: SLF001
        assert table is not None
        table.create_index("text", config=FTS(with_position=False))
        if name.endswith("ivfpq"):
            table.create_index("vector", config=IvfPq(distance_type="cosine", num_partitions=25, num_sub_vectors=48))
        times = []
        for i in range(rounds + 10):
            q = vectors[rng.integers(total)] + 0.1 * rng.standard_normal(384).astype(np.float32)
            t = time.perf_counter()
            store.search_sync(ORG, [KB], q / np.linalg.norm(q), "cleaning crown downtown", top_k=3, threshold=0.0,
                              tags=[])
            if i >= 10:
                times.append((time.perf_counter() - t) * 1000)
        out[name] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "hybrid": True}
    try:
        from qdrant_client import QdrantClient
        from qdrant_client import models as qm
    except ImportError:
        out["qdrant_local"] = "qdrant-client not installed"
        return out
    client = QdrantClient(path=tempfile.mkdtemp(prefix="kb-qdrant-"))
    client.create_collection("b", vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE))
    for s in range(0, total, 1000):
        client.upsert("b", points=[qm.PointStruct(id=i, vector=vectors[i].tolist(),
                                                  payload={"kb_id": KB, "text": chunks[i].text})
                                   for i in range(s, min(total, s + 1000))])
    times = []
    for i in range(rounds + 10):
        q = vectors[rng.integers(total)]
        t = time.perf_counter()
        client.query_points("b", query=q.tolist(), limit=10, query_filter=qm.Filter(
            must=[qm.FieldCondition(key="kb_id", match=qm.MatchValue(value=KB))]))
        if i >= 10:
            times.append((time.perf_counter() - t) * 1000)
    out["qdrant_local"] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "hybrid": False}
    return out


async def run(args: argparse.Namespace, embed_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        embeddings = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("bench"))
        report: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
            store, chunks = await build_store(tmp, {}, embeddings, total=len(doc_chunks()))
            report["recall_at_3"], report["recall_misses"] = await recall(Retriever(embeddings, store))
            report["doc_chunks"] = len(chunks)
            print(f"recall@3 over {len(QUESTIONS)} questions, {len(chunks)} chunks: {report['recall_at_3']}")
            store, _ = await build_store(tmp + "/10k", {}, embeddings, total=args.chunks)
            report["latency_local"] = await latency(Retriever(embeddings, store), args.rounds)
            report["recall_at_3_10k"], _ = await recall(Retriever(embeddings, store))
            print(f"retrieval at {args.chunks} chunks, local folder: {report['latency_local']}, "
                  f"recall@3 {report['recall_at_3_10k']}")
            if (s3 := None if args.no_s3 else s3_options()) is not None:
                store, _ = await build_store(s3[0], s3[1], embeddings, total=args.chunks)
                report["latency_s3"] = await latency(Retriever(embeddings, store), args.rounds)
                print(f"retrieval at {args.chunks} chunks, MinIO: {report['latency_s3']}")
                # The voice server embeds questions in process (int8 ONNX) when the model is the bundled one.
                local = bundled_query_embedder("all-MiniLM-L6-v2", Path(tmp) / "embed-cache", embeddings)
                if local is not None:
                    local.start()
                    await asyncio.to_thread(local.ready.wait)
                report["latency_replica"] = await replica_latency(local or embeddings, s3[0], s3[1],
                                                                  tmp + "/replicas", args.rounds)
                print(f"retrieval at {args.chunks} chunks, MinIO + local replica: {report['latency_replica']}")
            t = time.perf_counter()
            for q, _ in QUESTIONS:
                await embeddings.embed([q])
            report["query_embedding_mean_ms"] = round((time.perf_counter() - t) * 1000 / len(QUESTIONS), 1)
            ingest_at = (s3[0] + "-ingest", s3[1]) if s3 is not None else (tmp + "/ingest", {})
            report["ingestion"] = await ingestion(embeddings, *ingest_at)
            print(f"ingestion, 100-page PDF: {report['ingestion']}")
    if args.engines:
        report["engines"] = engines()
        print(f"engines (search only, 10k chunks): {report['engines']}")
    return report


def markdown(r: dict[str, Any]) -> str:
    lat, ing = r["latency_local"], r["ingestion"]
    s3 = r.get("latency_s3")
    lines = [
        START,
        "## Knowledge base (`bench/knowledge_bench.py`)",
        "",
        f"Run {r['started']} at commit `{r['commit']}` on {r['machine']}; 1-minute load average {r['load_start']} "
        f"at start, {r['load_end']} at end (the 2 cores are shared with other sessions). Embeddings: "
        "all-MiniLM-L6-v2 (384 dimensions) served by `python -m speech.embed` (numpy, 1 BLAS thread), over HTTP. "
        "Raw numbers: `bench/results/knowledge.json`.",
        "",
        "| measure | goal | measured |",
        "|---|---|---|",
        f"| recall@3, {len(QUESTIONS)} paraphrased questions over the test documents ({r['doc_chunks']} chunks) "
        f"| ≥ {GOALS['recall_at_3']} | {r['recall_at_3']} (with 10k chunks in the table: {r['recall_at_3_10k']}) |",
        f"| retrieval p95 at 10k chunks, query embedding included, LanceDB on a local folder | "
        f"≤ {GOALS['retrieval_p95_ms']:.0f} ms | p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms |",
    ]
    if s3:
        lines.append(f"| same, tables on MinIO (the default `KNOWLEDGE_URI`) read directly | "
                     f"≤ {GOALS['retrieval_p95_ms']:.0f} ms | p50 {s3['p50_ms']} ms, p95 {s3['p95_ms']} ms |")
    if rep := r.get("latency_replica"):
        lines.append(f"| same, the production path: MinIO table, voice server's local replica, question embedded "
                     "in the voice server (int8 ONNX) | "
                     f"≤ {GOALS['retrieval_p95_ms']:.0f} ms | p50 {rep['p50_ms']} ms, p95 {rep['p95_ms']} ms "
                     f"(search alone p50 {rep['search_only_p50_ms']} / p95 {rep['search_only_p95_ms']} ms; copy made in "
                     f"{rep['replica_copy_s']} s, {rep['replica_bytes'] // 1024} KiB) |")
    lines += [
        f"| query embedding alone (HTTP round trip included), mean | | {r['query_embedding_mean_ms']} ms |",
        f"| ingestion of a 100-page text PDF ({ing['chunks']} chunks) | | {ing['pages_per_s']} pages/s "
        f"({ing['seconds']} s: extract {ing['extract_s']}, embed + store {ing['embed_and_store_s']}, "
        f"index {ing['index_s']}) |",
    ]
    if isinstance(r.get("engines"), dict):
        lines += ["", "Engines, search only (vector top-k + BM25 top-k and fusion for LanceDB; vector only for "
                      "Qdrant, whose local mode has no full-text search), 10k random 384-d vectors:", "",
                  "| engine | p50 ms | p95 ms |", "|---|---|---|"]
        for name, v in r["engines"].items():
            lines.append(f"| {name} | {v['p50_ms']} | {v['p95_ms']} |" if isinstance(v, dict) else f"| {name} | {v} | |")
    if r["recall_misses"]:
        lines += ["", "Misses: " + "; ".join(f"\"{m['question']}\" (expected \"{m['expected']}\")"
                                             for m in r["recall_misses"])]
    lines.append(END)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-url", help="OpenAI-compatible base URL (default: start speech.embed)")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--engines", action="store_true", help="also compare LanceDB and Qdrant (search only)")
    parser.add_argument("--no-s3", action="store_true", help="skip the MinIO measurements")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    proc = None
    minio = None
    if not args.no_s3 and s3_options() is None:
        minio = start_minio(Path(tempfile.mkdtemp(prefix="kb-minio-")))
    embed_url = args.embed_url
    if embed_url is None:
        port = free_port()
        proc = embed_process(Path(tempfile.mkdtemp(prefix="kb-embed-")), port=port)
        proc.start()
        embed_url = f"http://127.0.0.1:{port}/v1"
    try:
        report = asyncio.run(run(args, embed_url))
    finally:
        if proc is not None:
            proc.stop()
        if minio is not None:
            minio.stop()
    report.update(started=started, commit=commit(), machine=machine(), load_start=round(load_start, 2),
                  load_end=round(os.getloadavg()[0], 2))
    if args.no_write:
        print(json.dumps(report))
    else:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2))
        replace_section(START, END, markdown(report))
        print(f"wrote {RESULTS.relative_to(ROOT)} and the knowledge section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
