"""The vector engine: LanceDB, one table per organisation, stored in the platform's MinIO/S3 bucket.

Why LanceDB (figures in docs/knowledge-base.md): embedded in the processes that already run (no new server), tables
are plain files in the object store every replica can read, vector and full-text (BM25) indexes in one table, and
the same tables open from LanceDB Cloud/Enterprise when one machine is outgrown.

Retrieval is hybrid: the best vector hits and the best keyword hits are fused as
`0.8 x cosine + 0.2 x bm25 / best bm25 of the query`, so a score threshold keeps its meaning from query to query.
LanceDB's calls are blocking; everything here runs in a worker thread (`asyncio.to_thread`).

Readers that know the organisation's knowledge version (a call, through its resolved agent) search a local replica
of the table when the store is remote (core/knowledge/replicas.py); the others (the backend's test box) read the
store itself.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import FTS, IvfFlat, IvfPq

from core.knowledge.models import ChunkIn, RetrievedChunk
from core.knowledge.replicas import LocalReplicas

_VECTOR_WEIGHT = 0.8
_IVF_PQ, _IVF_FLAT = "IvfPq", "IvfFlat"  # LanceDB's index_type names
_SAFE = re.compile(r"^[A-Za-z0-9_\-=.:@ ]{1,200}$")
# From this many rows an IVF-PQ index bounds the work per query (approximate, refined on full vectors). Below it an
# IVF-flat index of a few partitions, all of them probed: exact like a flat scan, and 2-3x faster than LanceDB's flat
# scan at 10k rows (it reads the vectors from the index file, not the data files: BENCHMARKS.md, "Knowledge base:
# retrieval under 30 ms").
VECTOR_INDEX_MIN_ROWS = 50_000
_EXACT_PARTITIONS = 8
_NPROBES = 20  # >= _EXACT_PARTITIONS: the IVF-flat search is exhaustive
_VECTOR_INDEX_FROM_ROWS = 256  # below, a flat scan costs next to nothing


class KnowledgeStoreError(Exception):
    """The vector store refused or failed an operation."""


def _quote(value: str) -> str:
    if not _SAFE.match(value):
        raise KnowledgeStoreError(f"unsupported characters in {value!r}")
    return "'" + value.replace("'", "''") + "'"


def _schema(dims: int) -> pa.Schema:
    return pa.schema([
        pa.field("chunk_id", pa.string()), pa.field("kb_id", pa.string()), pa.field("source_id", pa.string()),
        pa.field("source_name", pa.string()), pa.field("revision", pa.int64()), pa.field("page", pa.int64()),
        pa.field("text", pa.string()), pa.field("tags", pa.list_(pa.string())),
        pa.field("vector", pa.list_(pa.float32(), dims)),
    ])


class KnowledgeStore:
    def __init__(self, uri: str, storage_options: dict[str, str], *, replica_dir: Path | None = None,
                 replica_max_bytes: int = 0) -> None:
        """`replica_dir`: keep local read replicas there (up to `replica_max_bytes`), for a store in S3/MinIO."""
        self._uri = uri
        self._options = storage_options
        self._db: Any = None  # connected on first use: the bucket may be created after construction
        self._tables: dict[str, Any] = {}
        self._fresh_for: dict[str, int] = {}  # table -> the highest knowledge version its handle was refreshed for
        self._index_kind: dict[tuple[int, int], str | None] = {}  # (table handle, version) -> vector index type
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="knowledge-fts")
        remote = "://" in uri and not uri.startswith("file://")  # a local folder needs no replica
        self.replicas = (LocalReplicas(replica_dir, replica_max_bytes, self._copy_to)
                         if replica_dir is not None and replica_max_bytes > 0 and remote else None)

    @staticmethod
    def table_name(org_id: str) -> str:
        return "org_" + re.sub(r"[^A-Za-z0-9_]", "_", org_id)

    def _table(self, org_id: str, dims: int | None = None) -> Any | None:
        name = self.table_name(org_id)
        with self._lock:
            if name in self._tables:
                return self._tables[name]
            if self._db is None:
                # Other processes (the ingesting backend) add rows: see their versions within a second.
                self._db = lancedb.connect(self._uri, storage_options=self._options or None,
                                           read_consistency_interval=timedelta(seconds=1))
            try:
                table = self._db.open_table(name)
            except (ValueError, FileNotFoundError):
                if dims is None:
                    return None
                table = self._db.create_table(name, schema=_schema(dims), exist_ok=True)
            self._tables[name] = table
            return table

    def _copy_to(self, name: str, folder: Path) -> Any:
        """A replica: the table as it is now (a fresh connection sees the latest version), indexed, in `folder`."""
        remote = lancedb.connect(self._uri, storage_options=self._options or None).open_table(name)
        local = lancedb.connect(str(folder)).create_table(name, data=remote.to_arrow())
        self._index(local)
        return local

    # -- writes (backend ingestion) -------------------------------------------------------------------------

    async def add(self, org_id: str, chunks: list[ChunkIn], vectors: np.ndarray) -> None:
        await asyncio.to_thread(self._add, org_id, chunks, vectors)

    def _add(self, org_id: str, chunks: list[ChunkIn], vectors: np.ndarray) -> None:
        table = self._table(org_id, dims=int(vectors.shape[1]))
        assert table is not None
        dims = table.schema.field("vector").type.list_size
        if dims != vectors.shape[1]:
            raise KnowledgeStoreError(f"the organisation's vectors have {dims} dimensions, the embedding model "
                                      f"gives {vectors.shape[1]}: re-index every source after changing the model")
        rows = [{**c.model_dump(), "page": c.page or 0, "vector": v} for c, v in zip(chunks, vectors, strict=True)]
        for start in range(0, len(rows), 1000):
            table.add(rows[start:start + 1000])

    async def finish_source(self, org_id: str, source_id: str, revision: int) -> None:
        """After a source's new revision is fully added: drop its older chunks and bring the indexes up to date."""
        await asyncio.to_thread(self._finish_source, org_id, source_id, revision)

    def _finish_source(self, org_id: str, source_id: str, revision: int) -> None:
        table = self._table(org_id)
        if table is None:
            return
        table.delete(f"source_id = {_quote(source_id)} AND revision < {int(revision)}")
        self._index(table)

    @staticmethod
    def _index(table: Any) -> None:
        kinds = _index_kinds(table)
        if ("text",) not in kinds:
            # First argument: the column (with `config`, LanceDB reads it as such).
            table.create_index("text", config=FTS(with_position=False))
        rows = table.count_rows()
        wanted = _IVF_PQ if rows >= VECTOR_INDEX_MIN_ROWS else _IVF_FLAT
        if kinds.get(("vector",)) != wanted and rows >= _VECTOR_INDEX_FROM_ROWS:
            table.create_index("vector", replace=True, config=IvfPq(
                distance_type="cosine", num_partitions=max(8, int(rows ** 0.5 / 4)),
                num_sub_vectors=table.schema.field("vector").type.list_size // 8) if wanted == _IVF_PQ
                else IvfFlat(distance_type="cosine", num_partitions=_EXACT_PARTITIONS))
        table.optimize()  # folds new rows into the existing indexes, compacts small fragments

    async def delete(self, org_id: str, *, kb_id: str | None = None, source_id: str | None = None,
                     revision: int | None = None) -> None:
        """A knowledge base's chunks, a source's, or one revision of a source (an ingestion that failed half-way)."""
        await asyncio.to_thread(self._delete, org_id, kb_id, source_id, revision)

    def _delete(self, org_id: str, kb_id: str | None, source_id: str | None, revision: int | None) -> None:
        table = self._table(org_id)
        if table is None:
            return
        where = f"source_id = {_quote(source_id)}" if source_id else f"kb_id = {_quote(kb_id or '')}"
        if revision is not None:
            where += f" AND revision = {int(revision)}"
        table.delete(where)

    # -- reads (the call, the test box) ---------------------------------------------------------------------

    def prefetch(self, org_id: str, version: int | None) -> None:
        """A call is starting: copy its table locally now, if it has a replica to be."""
        if self.replicas is not None and version is not None:
            self.replicas.prefetch(self.table_name(org_id), version)

    async def search(self, org_id: str, kb_ids: list[str], vector: np.ndarray, text: str, *, top_k: int,
                     threshold: float, tags: list[str], version: int | None = None) -> list[RetrievedChunk]:
        return await asyncio.to_thread(self.search_sync, org_id, kb_ids, vector, text, top_k=top_k,
                                       threshold=threshold, tags=tags, version=version)

    def search_sync(self, org_id: str, kb_ids: list[str], vector: np.ndarray, text: str, *, top_k: int,
                    threshold: float, tags: list[str], version: int | None = None) -> list[RetrievedChunk]:
        """`version`: the organisation's knowledge version the caller was given (a call's resolved agent); with
        it, a local replica at that version or newer is searched instead of the store."""
        if not kb_ids:
            return []
        if self.replicas is not None and version is not None:
            replica = self.replicas.acquire(self.table_name(org_id), version)
            if replica is not None:
                try:
                    return self._search(replica.table, kb_ids, vector, text, top_k, threshold, tags)
                finally:
                    self.replicas.release(replica)
        table = self._table(org_id)
        if table is None:
            return []
        if version is not None:
            self._at_least(org_id, table, version)
        return self._search(table, kb_ids, vector, text, top_k, threshold, tags)

    def _vector_index(self, table: Any) -> str | None:
        """The table's vector index type at its current version (looked up once per version, not per query)."""
        key = (id(table), table.version)
        with self._lock:
            if key in self._index_kind:
                return self._index_kind[key]
        kind = _index_kinds(table).get(("vector",))
        with self._lock:
            if len(self._index_kind) > 256:
                self._index_kind.clear()
            self._index_kind[key] = kind
        return kind

    def _at_least(self, org_id: str, table: Any, version: int) -> None:
        """The store's handle re-reads the table's latest version once per knowledge version a caller brings (it
        otherwise looks for new versions at most once a second, which could hide a change just made)."""
        name = self.table_name(org_id)
        with self._lock:
            if self._fresh_for.get(name, -1) >= version:
                return
            self._fresh_for[name] = version
        table.checkout_latest()

    def _search(self, table: Any, kb_ids: list[str], vector: np.ndarray, text: str, top_k: int, threshold: float,
                tags: list[str]) -> list[RetrievedChunk]:
        where = f"kb_id IN ({', '.join(_quote(k) for k in kb_ids)})"
        where += "".join(f" AND array_has(tags, {_quote(t)})" for t in tags)
        wanted = max(top_k * 4, 10)
        columns = ["chunk_id", "kb_id", "source_id", "source_name", "page", "text"]
        # Both searches at once (LanceDB releases the GIL); keyword hits bring their vectors, so a keyword-only hit
        # gets its cosine similarity without another read.
        keyword = self._pool.submit(_keyword_hits, table, text, where, wanted, [*columns, "vector"])
        query = table.search(vector).distance_type("cosine").where(where, prefilter=True).nprobes(_NPROBES)
        if self._vector_index(table) == _IVF_PQ:  # approximate distances: re-rank on the full vectors
            query = query.refine_factor(5)
        vector_hits = query.limit(wanted).select([*columns, "_distance"]).to_list()
        keyword_hits = keyword.result()
        best_keyword = max((h["_score"] for h in keyword_hits), default=0.0) or 1.0
        fused: dict[str, dict[str, Any]] = {}
        for hit in vector_hits:
            fused[hit["chunk_id"]] = {**hit, "vector_score": 1.0 - float(hit["_distance"]), "keyword_score": 0.0}
        for hit in keyword_hits:
            entry = fused.setdefault(hit["chunk_id"], {
                **hit, "vector_score": float(np.dot(np.asarray(hit["vector"], dtype=np.float32), vector))})
            entry["keyword_score"] = float(hit["_score"]) / best_keyword
        chunks = []
        for entry in fused.values():
            vector_score = entry["vector_score"]
            score = _VECTOR_WEIGHT * vector_score + (1 - _VECTOR_WEIGHT) * entry["keyword_score"]
            if score >= threshold:
                chunks.append(RetrievedChunk(
                    chunk_id=entry["chunk_id"], kb_id=entry["kb_id"], source_id=entry["source_id"],
                    source_name=entry["source_name"], page=entry["page"] or None, text=entry["text"],
                    score=round(score, 4), vector_score=round(vector_score, 4),
                    keyword_score=round(entry["keyword_score"], 4)))
        chunks.sort(key=lambda c: c.score, reverse=True)
        return chunks[:top_k]


def _index_kinds(table: Any) -> dict[tuple[str, ...], str]:
    return {tuple(i.columns): i.index_type for i in table.list_indices()}


def _keyword_hits(table: Any, text: str, where: str, limit: int, columns: list[str]) -> list[dict[str, Any]]:
    words = " ".join(re.findall(r"\w+", text))
    if not words:
        return []
    try:
        hits: list[dict[str, Any]] = (table.search(words, query_type="fts").where(where, prefilter=True)
                                      .limit(limit).select([*columns, "_score"]).to_list())
    except (ValueError, RuntimeError):  # no full-text index yet (first source still being indexed)
        return []
    return hits
