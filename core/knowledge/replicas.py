"""Local read replicas of knowledge tables, so a call's per-turn retrieval reads local files, not the object store.

Why: a query on a LanceDB table in MinIO/S3 pays object-store round trips (p95 135-186 ms at 10k chunks on the
2 shared cores, against ~30 ms on a local folder: BENCHMARKS.md). MinIO stays the source of truth; each voice
server copies a table to its own disk the first time a call needs it and searches the copy.

Staleness is ruled out by versions: the backend bumps an organisation's knowledge version after every change to its
table (backend/knowledge/versions.py) and each call's resolved agent carries the version current when the call was
set up. A replica serves a call only if it was copied at that version or later; otherwise the call reads the object
store (correct, slower) while a fresh copy is made in the background. So every voice-server replica answers from
content at least as new as the version its call was given, however many replicas there are.

Disk use is bounded: past `max_bytes` the least recently used replicas are dropped (a replica a search is reading is
deleted once that search is done). The copy is made by the caller's `copy` function (the store: table -> local
LanceDB table with its indexes); this module only keeps the books.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# After a failed copy (table missing, store down), calls read the store for this long before the next try.
RETRY_AFTER_S = 30.0

CopyTable = Callable[[str, Path], Any]  # (table name, empty local folder) -> the opened local table


@dataclass
class Replica:
    name: str
    version: int
    path: Path
    table: Any
    size_bytes: int
    readers: int = 0
    evicted: bool = False


@dataclass
class ReplicaStats:
    hits: int = 0  # searches served by a local replica
    misses: int = 0  # searches that had to read the object store
    copies: int = 0
    evictions: int = 0
    building: set[tuple[str, int]] = field(default_factory=set)


class LocalReplicas:
    def __init__(self, root: Path, max_bytes: int, copy: CopyTable) -> None:
        self._root = root
        self._max_bytes = max_bytes
        self._copy = copy
        self._lock = threading.Lock()
        self._replicas: OrderedDict[str, Replica] = OrderedDict()  # by table name, least recently used first
        self._failed_at: dict[str, float] = {}
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge-replica")
        self.stats = ReplicaStats()
        # Copies left by an earlier process of this replica have unknown versions: start empty.
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)

    def acquire(self, name: str, version: int) -> Replica | None:
        """The table's replica if it is at `version` or newer (release it after the search); otherwise None, and a
        copy at the current version is started in the background."""
        with self._lock:
            replica = self._replicas.get(name)
            if replica is not None and replica.version >= version:
                self._replicas.move_to_end(name)
                replica.readers += 1
                self.stats.hits += 1
                return replica
            self.stats.misses += 1
            self._start_copy(name, version)
            return None

    def release(self, replica: Replica) -> None:
        with self._lock:
            replica.readers -= 1
            drop = replica.evicted and replica.readers == 0
        if drop:
            shutil.rmtree(replica.path, ignore_errors=True)

    def prefetch(self, name: str, version: int) -> None:
        """At call start: have the replica ready by the caller's first question."""
        with self._lock:
            replica = self._replicas.get(name)
            if replica is None or replica.version < version:
                self._start_copy(name, version)

    def replica_version(self, name: str) -> int | None:
        with self._lock:
            replica = self._replicas.get(name)
            return replica.version if replica is not None else None

    def disk_bytes(self) -> int:
        with self._lock:
            return sum(r.size_bytes for r in self._replicas.values())

    def close(self) -> None:
        self._builder.shutdown(wait=False, cancel_futures=True)

    def _start_copy(self, name: str, version: int) -> None:  # under the lock
        if (name, version) in self.stats.building:
            return
        if time.monotonic() - self._failed_at.get(name, -RETRY_AFTER_S) < RETRY_AFTER_S:
            return
        self.stats.building.add((name, version))
        self._builder.submit(self._build, name, version)

    def _build(self, name: str, version: int) -> None:
        path = self._root / f"{name}-v{version}"
        try:
            current = self.replica_version(name)
            if current is not None and current >= version:
                return  # a copy at a newer version landed while this one waited
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            table = self._copy(name, path)
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        except Exception as exc:  # noqa: BLE001 - any failure: calls keep reading the store, retried later
            log.warning("knowledge replica of %s (version %s) failed: %s", name, version, str(exc)[:300])
            shutil.rmtree(path, ignore_errors=True)
            with self._lock:
                self._failed_at[name] = time.monotonic()
                self.stats.building.discard((name, version))
            return
        with self._lock:
            self.stats.building.discard((name, version))
            self.stats.copies += 1
            self._failed_at.pop(name, None)
            old = self._replicas.pop(name, None)
            dropped = [old] if old is not None else []
            self._replicas[name] = Replica(name, version, path, table, size)
            total = sum(r.size_bytes for r in self._replicas.values())
            while total > self._max_bytes and self._replicas:
                _, lru = self._replicas.popitem(last=False)
                total -= lru.size_bytes
                dropped.append(lru)
                self.stats.evictions += 1
            if name not in self._replicas:  # alone over the limit: calls read the store; no copy loop
                log.warning("knowledge replica of %s (%d bytes) is over KNOWLEDGE_REPLICA_MAX_MB", name, size)
                self._failed_at[name] = time.monotonic()
            doomed = []
            for replica in dropped:
                replica.evicted = True
                if replica.readers == 0:
                    doomed.append(replica.path)
        for gone in doomed:
            shutil.rmtree(gone, ignore_errors=True)
        log.info("knowledge replica of %s at version %s: %d bytes", name, version, size)
