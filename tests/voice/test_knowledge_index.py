"""The exact IVF-flat vector index a table gets below IVF-PQ's size: same hits as a flat scan, and it gives way to
IVF-PQ once the table grows past VECTOR_INDEX_MIN_ROWS."""

from __future__ import annotations

import tempfile

import lancedb
import numpy as np
import pytest
from lancedb.index import FTS

from core.knowledge import store as store_module
from core.knowledge.models import ChunkIn
from core.knowledge.store import KnowledgeStore

WORDS = "price cleaning filling crown whitening parking hours downtown insurance policy fee child".split()


def _rows(n: int, start: int = 0) -> tuple[list[ChunkIn], np.ndarray]:
    rng = np.random.default_rng(start)
    vectors = rng.standard_normal((n, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [ChunkIn(chunk_id=f"c-{start + i}", kb_id="kb" if i % 3 else "other", source_id="s", source_name="s.txt",
                      revision=1, text=" ".join(rng.choice(WORDS, 12))) for i in range(n)]
    return chunks, vectors


def _vector_index(store: KnowledgeStore) -> str | None:
    table = store._table("org")  # noqa: SLF001 - the index the store built
    assert table is not None
    return {tuple(i.columns): i.index_type for i in table.list_indices()}.get(("vector",))


def test_the_exact_index_finds_what_a_flat_scan_finds() -> None:
    indexed = KnowledgeStore(tempfile.mkdtemp(prefix="kb-ivf-"), {})
    chunks, vectors = _rows(1200)
    indexed._add("org", chunks, vectors)  # noqa: SLF001 - synchronous in a test
    indexed._finish_source("org", "none", 1)  # noqa: SLF001
    more, more_vectors = _rows(40, start=5000)  # rows added after the index was built are searched too
    indexed._add("org", more, more_vectors)  # noqa: SLF001
    assert _vector_index(indexed) == "IvfFlat"

    flat_dir = tempfile.mkdtemp(prefix="kb-flat-")
    rows = indexed._table("org").to_arrow()  # type: ignore[union-attr]  # noqa: SLF001
    lancedb.connect(flat_dir).create_table("org_org", data=rows).create_index("text", config=FTS(with_position=False))
    flat = KnowledgeStore(flat_dir, {})

    rng = np.random.default_rng(9)
    for probe in [*vectors[:5], *more_vectors[:5], *rng.standard_normal((5, 32)).astype(np.float32)]:
        probe = probe / np.linalg.norm(probe)
        hits = [indexed.search_sync("org", ["kb"], probe, "cleaning crown", top_k=5, threshold=0.0, tags=[]),
                flat.search_sync("org", ["kb"], probe, "cleaning crown", top_k=5, threshold=0.0, tags=[])]
        assert [h.chunk_id for h in hits[0]] == [h.chunk_id for h in hits[1]]
        assert all(h.kb_id == "kb" for h in hits[0])


def test_a_growing_table_moves_to_ivf_pq(monkeypatch: pytest.MonkeyPatch) -> None:
    store = KnowledgeStore(tempfile.mkdtemp(prefix="kb-grow-"), {})
    chunks, vectors = _rows(300)
    store._add("org", chunks, vectors)  # noqa: SLF001
    store._finish_source("org", "none", 1)  # noqa: SLF001
    assert _vector_index(store) == "IvfFlat"
    monkeypatch.setattr(store_module, "VECTOR_INDEX_MIN_ROWS", 600)  # small enough to cross in a test
    more, more_vectors = _rows(400, start=1000)
    store._add("org", more, more_vectors)  # noqa: SLF001
    store._finish_source("org", "none", 1)  # noqa: SLF001
    assert _vector_index(store) == "IvfPq"
    hits = store.search_sync("org", ["kb"], more_vectors[1], "", top_k=1, threshold=0.0, tags=[])
    assert hits[0].chunk_id == "c-1001"  # refined on the full vectors: the row itself comes first
