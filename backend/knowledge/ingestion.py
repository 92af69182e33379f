"""The ingestion worker: queued sources -> text -> chunks -> embeddings -> the vector store, off the request path.

Runs as a backend background loop (services/workers.py, on the elected leader). One source at a time; progress is
written to the source so the Knowledge page can show it. Failures:
- the text cannot be used (corrupt/encrypted PDF, only images, binary): `failed` with the reason, at once;
- the embeddings endpoint or the store is down: back to `queued` with the reason, retried with backoff up to
  `max_attempts`, then `failed`.
Either way the chunks of the source's last good revision stay searchable: a revision's old chunks are only dropped
after its new ones are all in (KnowledgeStore.finish_source).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from minio.error import S3Error
from pymongo import ReturnDocument

from backend.db.collections import KNOWLEDGE_SOURCES, Db
from backend.db.ids import utcnow
from backend.knowledge.chunking import chunk_pages
from backend.knowledge.extract import ExtractionError, extract
from backend.knowledge.service import blob_key
from backend.knowledge.versions import KnowledgeVersions
from core.knowledge.embeddings import EmbeddingsClient, EmbeddingsUnavailable
from core.knowledge.models import ChunkIn, tag
from core.knowledge.store import KnowledgeStore, KnowledgeStoreError
from core.storage import ObjectStore

log = logging.getLogger(__name__)

_EMBED_BATCH = 32


class IngestionWorker:
    def __init__(self, db: Db, blobs: ObjectStore, embeddings: EmbeddingsClient, store: KnowledgeStore, *,
                 max_attempts: int = 5, backoff_s: float = 5.0, lease_s: float = 600.0) -> None:
        self._db = db
        self._blobs = blobs
        self._embeddings = embeddings
        self._store = store
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._lease_s = lease_s
        self._versions = KnowledgeVersions(db)

    async def run_once(self) -> int:
        """Ingests one due source; 1 if it did (the loop goes again at once), else 0."""
        doc = await self._claim()
        if doc is None:
            return 0
        try:
            await self._ingest(doc)
        finally:  # whatever it did to the table (new chunks, old ones dropped, a failed attempt's undone)
            await self._versions.bump(doc["org_id"])
        return 1

    async def _claim(self) -> dict[str, Any] | None:
        now = utcnow()
        due = {"$or": [{"status": "queued", "next_attempt_at": {"$lte": now}},
                       {"status": "processing", "lease_until": {"$lt": now}}]}  # a worker died mid-way
        return await self._db[KNOWLEDGE_SOURCES].find_one_and_update(
            due, {"$set": {"status": "processing", "progress": 0.0, "updated_at": now,
                           "lease_until": now + timedelta(seconds=self._lease_s)}},
            sort=[("next_attempt_at", 1)], return_document=ReturnDocument.AFTER)

    async def _ingest(self, doc: dict[str, Any]) -> None:
        source_id, revision, org_id = doc["_id"], int(doc["revision"]), doc["org_id"]
        try:
            try:
                data = await self._blobs.get_bytes(blob_key(org_id, source_id, revision))
            except S3Error as exc:
                if exc.code != "NoSuchKey":
                    raise OSError(f"object store: {exc.code}") from exc  # retried
                raise ExtractionError("the uploaded file is missing: upload it again") from exc
            pages = await asyncio.to_thread(extract, doc["kind"], data)
            chunks = chunk_pages(pages, one_per_page=doc["kind"] == "csv")
            tags = [tag(k, v) for k, v in doc.get("metadata", {}).items()]
            rows = [ChunkIn(chunk_id=f"{source_id}-{revision}-{i}", kb_id=doc["kb_id"], source_id=source_id,
                            source_name=doc["name"], revision=revision, page=c.number, text=c.text, tags=tags)
                    for i, c in enumerate(chunks)]
            for start in range(0, len(rows), _EMBED_BATCH):
                batch = rows[start:start + _EMBED_BATCH]
                vectors = await self._embeddings.embed([r.text for r in batch])
                await self._store.add(org_id, batch, vectors)
                if not await self._progress(source_id, revision, (start + len(batch)) / len(rows) * 0.95):
                    # Deleted or re-uploaded meanwhile: drop what this revision added (a newer revision is queued).
                    await self._store.delete(org_id, source_id=source_id, revision=revision)
                    return
            await self._store.finish_source(org_id, source_id, revision)
        except ExtractionError as exc:
            await self._finish(source_id, revision, {"status": "failed", "error": str(exc)})
            return
        except (EmbeddingsUnavailable, KnowledgeStoreError, OSError, ValueError, RuntimeError) as exc:
            await self._retry_later(doc, f"{type(exc).__name__}: {exc}"[:500])
            try:  # what this attempt added; the last good revision stays
                await self._store.delete(org_id, source_id=source_id, revision=revision)
            except (KnowledgeStoreError, OSError, ValueError, RuntimeError):
                log.warning("could not drop a failed revision's chunks", extra={"source_id": source_id})
            return
        if not await self._finish(source_id, revision, {"status": "ready", "error": None, "progress": 1.0,
                                                        "pages": len(pages), "chunk_count": len(rows)}):
            await self._store.delete(org_id, source_id=source_id, revision=revision)  # deleted at the last moment
            return
        for old in range(1, revision):
            await self._blobs.delete(blob_key(org_id, source_id, old))
        log.info("knowledge source indexed", extra={"source_id": source_id, "chunks": len(rows)})

    async def _progress(self, source_id: str, revision: int, progress: float) -> bool:
        result = await self._db[KNOWLEDGE_SOURCES].update_one(
            {"_id": source_id, "revision": revision}, {"$set": {"progress": round(progress, 3)}})
        return result.matched_count == 1

    async def _finish(self, source_id: str, revision: int, fields: dict[str, Any]) -> bool:
        """False when the source is gone or has a newer revision."""
        result = await self._db[KNOWLEDGE_SOURCES].update_one(
            {"_id": source_id, "revision": revision},
            {"$set": {**fields, "lease_until": None, "updated_at": utcnow()}})
        return result.matched_count == 1

    async def _retry_later(self, doc: dict[str, Any], reason: str) -> None:
        attempts = int(doc.get("attempts", 0)) + 1
        log.warning("knowledge ingestion failed", extra={"source_id": doc["_id"], "attempt": attempts,
                                                          "error": reason})
        if attempts >= self._max_attempts:
            fields: dict[str, Any] = {"status": "failed", "attempts": attempts,
                                      "error": f"gave up after {attempts} attempts: {reason}"}
        else:
            delay = min(self._backoff_s * 2 ** (attempts - 1), 600.0)
            fields = {"status": "queued", "attempts": attempts, "error": f"will retry: {reason}",
                      "next_attempt_at": utcnow() + timedelta(seconds=delay)}
        await self._finish(doc["_id"], int(doc["revision"]), fields)
