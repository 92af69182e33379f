"""Voice servers' local copies of knowledge tables (core/knowledge/replicas.py), against a LanceDB table in the
real MinIO: a call at a knowledge version reads a local copy at that version or newer and never an older one (a
re-upload's new content is what the next call gets, from the store until the new copy is made), and copies beyond
the disk cap are evicted least recently used first."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import numpy as np

from core.knowledge.models import ChunkIn
from core.knowledge.settings import KnowledgeSettings
from core.knowledge.store import KnowledgeStore
from core.storage import ObjectStore

DIMS = 384
KB = "kb"


async def _location() -> tuple[str, dict[str, str]]:
    settings = KnowledgeSettings()
    await ObjectStore(settings).ensure_bucket(settings.s3_bucket_knowledge)
    uri, options = settings.knowledge_location()
    return f"{uri}-replicas-{uuid.uuid4().hex[:8]}", options


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


async def _upload(store: KnowledgeStore, org: str, revision: int, texts: list[str]) -> None:
    """What the ingestion worker does for one revision of one source."""
    chunks = [ChunkIn(chunk_id=f"prices-{revision}-{i}", kb_id=KB, source_id="prices", source_name="prices.md",
                      revision=revision, text=text) for i, text in enumerate(texts)]
    await store.add(org, chunks, np.stack([_vector(i) for i in range(len(texts))]))
    await store.finish_source(org, "prices", revision)


async def _texts(store: KnowledgeStore, org: str, version: int | None) -> list[str]:
    found = await store.search(org, [KB], _vector(0), "whitening price", top_k=5, threshold=0.0, tags=[],
                               version=version)
    return [c.text for c in found]


async def _copied(store: KnowledgeStore, org: str, version: int) -> None:
    assert store.replicas is not None
    for _ in range(600):
        current = store.replicas.replica_version(store.table_name(org))
        if current is not None and current >= version:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no local copy of {org} at version {version}")


async def test_calls_read_a_local_copy_and_never_an_older_one(data_services: dict[str, str]) -> None:
    uri, options = await _location()
    backend = KnowledgeStore(uri, options)
    replica_dir = Path(tempfile.mkdtemp(prefix="kb-replicas-"))
    voice = KnowledgeStore(uri, options, replica_dir=replica_dir, replica_max_bytes=200 * 1024 * 1024)
    assert voice.replicas is not None
    await _upload(backend, "org", 1, ["Teeth whitening costs 349 dollars.", "Parking is in the Maplewood garage."])

    # Version 1 (what the backend would hand the call): the first search reads the store and starts a copy.
    assert any("349" in t for t in await _texts(voice, "org", 1))
    assert voice.replicas.stats.misses == 1
    await _copied(voice, "org", 1)
    assert any("349" in t for t in await _texts(voice, "org", 1))
    assert voice.replicas.stats.hits == 1
    first_copy = voice.replicas.replica_version("org_org")
    assert first_copy == 1 and (replica_dir / "org_org-v1").is_dir()

    # Re-upload: a new revision replaces the old one in MinIO and the backend bumps the version to 2.
    await _upload(backend, "org", 2, ["Teeth whitening now costs 399 dollars.", "Parking is in the Maplewood garage."])
    texts = await _texts(voice, "org", 2)  # the local copy is at 1: not used, the store answers
    assert any("399" in t for t in texts) and not any("349" in t for t in texts), texts
    await _copied(voice, "org", 2)
    hits = voice.replicas.stats.hits
    texts = await _texts(voice, "org", 2)
    assert any("399" in t for t in texts) and not any("349" in t for t in texts), texts
    assert voice.replicas.stats.hits == hits + 1
    assert not (replica_dir / "org_org-v1").exists(), "the replaced copy is deleted"
    # A call set up before the re-upload (version 1) gets the newer copy too.
    assert not any("349" in t for t in await _texts(voice, "org", 1))
    # Readers without a version (the backend's test box) read the store itself.
    assert any("399" in t for t in await _texts(voice, "org", None))

    # A second voice server (its own folder) starting after the change is just as current.
    other = KnowledgeStore(uri, options, replica_dir=Path(tempfile.mkdtemp(prefix="kb-replicas-")),
                           replica_max_bytes=200 * 1024 * 1024)
    other.prefetch("org", 2)
    await _copied(other, "org", 2)
    texts = await _texts(other, "org", 2)
    assert any("399" in t for t in texts) and not any("349" in t for t in texts), texts


async def test_copies_beyond_the_disk_cap_are_evicted_least_recently_used_first(
        data_services: dict[str, str]) -> None:
    uri, options = await _location()
    backend = KnowledgeStore(uri, options)
    texts = [f"Price list entry {i}: teeth whitening and cleaning, {300 + i} dollars." for i in range(200)]
    for org in ("a", "b", "c"):
        await _upload(backend, org, 1, texts)
    sizing = KnowledgeStore(uri, options, replica_dir=Path(tempfile.mkdtemp(prefix="kb-size-")),
                            replica_max_bytes=200 * 1024 * 1024)
    sizing.prefetch("a", 1)
    await _copied(sizing, "a", 1)
    assert sizing.replicas is not None
    one = sizing.replicas.disk_bytes()
    assert one > 0

    replica_dir = Path(tempfile.mkdtemp(prefix="kb-replicas-"))
    voice = KnowledgeStore(uri, options, replica_dir=replica_dir, replica_max_bytes=int(one * 2.5))
    assert voice.replicas is not None
    for org in ("a", "b"):
        voice.prefetch(org, 1)
        await _copied(voice, org, 1)
    held = voice.replicas.acquire("org_b", 1)  # a search reading "b" while the third copy lands
    assert held is not None
    await _texts(voice, "a", 1)  # "a" used last: "b" is now the least recently used
    voice.prefetch("c", 1)
    await _copied(voice, "c", 1)

    assert voice.replicas.replica_version("org_b") is None, "evicted"
    assert voice.replicas.replica_version("org_a") == 1 and voice.replicas.replica_version("org_c") == 1
    assert voice.replicas.disk_bytes() <= int(one * 2.5)
    assert voice.replicas.stats.evictions == 1
    assert (replica_dir / "org_b-v1").is_dir(), "kept on disk while a search reads it"
    voice.replicas.release(held)
    assert not (replica_dir / "org_b-v1").exists(), "deleted once that search is done"
    # The evicted table still answers (from the store), and is copied again.
    misses = voice.replicas.stats.misses
    assert len(await _texts(voice, "b", 1)) == 5
    assert voice.replicas.stats.misses == misses + 1
