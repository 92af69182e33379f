"""Knowledge bases and sources for the API: create, list, upload (queued for the ingestion worker), delete, search.

Uploads are checked here (type, size, emptiness: a clear 4xx) and stored as they came in the knowledge bucket;
the text is extracted and indexed later by backend/knowledge/ingestion.py, off the request path. A re-upload under
the same name is a new revision of the same source: its old chunks stay searchable until the new ones are in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument

from backend.db.collections import KNOWLEDGE_BASES, KNOWLEDGE_SOURCES, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, bad_request, not_found
from backend.knowledge.extract import kind_of
from backend.knowledge.versions import KnowledgeVersions
from backend.models.knowledge import (
    KnowledgeBaseCreate,
    KnowledgeBaseOut,
    KnowledgeBaseUpdate,
    SearchRequest,
    SearchResult,
    SourceOut,
)
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from core.agent_config import KnowledgeConfig
from core.knowledge.retriever import Retriever
from core.knowledge.store import KnowledgeStore
from core.storage import ObjectStore


def blob_key(org_id: str, source_id: str, revision: int) -> str:
    return f"sources/{org_id}/{source_id}/{revision}"


class KnowledgeService:
    def __init__(self, db: Db, blobs: ObjectStore, store: KnowledgeStore, retriever: Retriever, audit: AuditLog,
                 max_upload_bytes: int) -> None:
        self._db = db
        self._blobs = blobs
        self._store = store
        self._retriever = retriever
        self._audit = audit
        self._versions = KnowledgeVersions(db)
        self.max_upload_bytes = max_upload_bytes
        self.on_queued: Callable[[], None] = lambda: None

    # -- knowledge bases ------------------------------------------------------------------------------------

    async def _kb(self, principal: Principal, kb_id: str) -> dict[str, Any]:
        doc = await self._db[KNOWLEDGE_BASES].find_one({"_id": kb_id})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Knowledge base")
        return doc

    async def list_kbs(self, principal: Principal) -> list[KnowledgeBaseOut]:
        counts: dict[str, tuple[int, int]] = {}
        async for src in self._db[KNOWLEDGE_SOURCES].find({"org_id": principal.org_id},
                                                          {"kb_id": 1, "chunk_count": 1}):
            n, chunks = counts.get(src["kb_id"], (0, 0))
            counts[src["kb_id"]] = (n + 1, chunks + int(src.get("chunk_count", 0)))
        cursor = self._db[KNOWLEDGE_BASES].find({"org_id": principal.org_id}).sort("created_at", -1)
        return [_kb_out(doc, *counts.get(doc["_id"], (0, 0))) async for doc in cursor]

    async def create_kb(self, principal: Principal, body: KnowledgeBaseCreate) -> KnowledgeBaseOut:
        now = utcnow()
        doc: dict[str, Any] = {"_id": new_id(), "org_id": principal.org_id, "name": body.name, "description": body.description,
               "created_at": now, "updated_at": now, "created_by": principal.actor}
        await self._db[KNOWLEDGE_BASES].insert_one(doc)
        await self._audit.record(principal.org_id, principal, "knowledge_base.created", "knowledge_base",
                                 doc["_id"], {"name": body.name})
        return _kb_out(doc, 0, 0)

    async def get_kb(self, principal: Principal, kb_id: str) -> KnowledgeBaseOut:
        doc = await self._kb(principal, kb_id)
        sources = await self.list_sources(principal, kb_id)
        return _kb_out(doc, len(sources), sum(s.chunk_count for s in sources))

    async def update_kb(self, principal: Principal, kb_id: str, body: KnowledgeBaseUpdate) -> KnowledgeBaseOut:
        await self._kb(principal, kb_id)
        changes = {k: v for k, v in body.model_dump(exclude_none=True).items()}
        await self._db[KNOWLEDGE_BASES].update_one({"_id": kb_id}, {"$set": {**changes, "updated_at": utcnow()}})
        return await self.get_kb(principal, kb_id)

    async def delete_kb(self, principal: Principal, kb_id: str) -> None:
        """Its sources, their files and every chunk go; agents that named it simply find nothing there."""
        await self._kb(principal, kb_id)
        await self._store.delete(principal.org_id, kb_id=kb_id)
        await self._versions.bump(principal.org_id)
        async for src in self._db[KNOWLEDGE_SOURCES].find({"kb_id": kb_id}):
            await self._drop_blobs(src)
        await self._db[KNOWLEDGE_SOURCES].delete_many({"kb_id": kb_id})
        await self._db[KNOWLEDGE_BASES].delete_one({"_id": kb_id})
        await self._audit.record(principal.org_id, principal, "knowledge_base.deleted", "knowledge_base", kb_id, {})

    # -- sources --------------------------------------------------------------------------------------------

    async def list_sources(self, principal: Principal, kb_id: str) -> list[SourceOut]:
        await self._kb(principal, kb_id)
        cursor = self._db[KNOWLEDGE_SOURCES].find({"kb_id": kb_id}).sort("created_at", 1)
        return [_source_out(doc) async for doc in cursor]

    async def add_source(self, principal: Principal, kb_id: str, filename: str, data: bytes,
                         metadata: dict[str, str], kind: str | None = None) -> SourceOut:
        await self._kb(principal, kb_id)
        name = filename.strip().replace("/", "_").replace("\\", "_")[:200]
        kind = kind or kind_of(name)
        if not name:
            raise bad_request("The file needs a name", path="file")
        if kind is None:
            raise ApiError(415, "unsupported_type", f"{name}: unsupported file type; upload PDF, DOCX, TXT, "
                                                    "Markdown (.md) or CSV")
        if len(data) > self.max_upload_bytes:
            raise ApiError(413, "too_large", f"{name}: {len(data)} bytes is over the "
                                             f"{self.max_upload_bytes} byte limit")
        if not data.strip():
            raise bad_request(f"{name}: the file is empty", path="file", code="empty_file")
        now = utcnow()
        fields = {"kind": kind, "size_bytes": len(data), "status": "queued", "error": None, "progress": 0.0,
                  "attempts": 0, "metadata": metadata, "next_attempt_at": now, "lease_until": None,
                  "updated_at": now}
        # Same name in the same knowledge base: a new revision of that source (re-upload replaces).
        doc = await self._db[KNOWLEDGE_SOURCES].find_one_and_update(
            {"kb_id": kb_id, "name": name},
            {"$set": fields, "$inc": {"revision": 1},
             "$setOnInsert": {"_id": new_id(), "org_id": principal.org_id, "kb_id": kb_id, "name": name,
                              "pages": 0, "chunk_count": 0, "created_at": now}},
            upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None  # upsert with ReturnDocument.AFTER always returns the document
        await self._blobs.put_bytes(blob_key(principal.org_id, doc["_id"], doc["revision"]), data)
        await self._audit.record(principal.org_id, principal, "knowledge_source.uploaded", "knowledge_source",
                                 doc["_id"], {"name": name, "revision": doc["revision"], "size": len(data)})
        self.on_queued()
        return _source_out(doc)

    async def delete_source(self, principal: Principal, kb_id: str, source_id: str) -> None:
        await self._kb(principal, kb_id)
        doc = await self._db[KNOWLEDGE_SOURCES].find_one({"_id": source_id})
        if doc is None or doc["kb_id"] != kb_id:
            raise not_found("Source")
        await self._store.delete(principal.org_id, source_id=source_id)
        await self._versions.bump(principal.org_id)
        await self._drop_blobs(doc)
        await self._db[KNOWLEDGE_SOURCES].delete_one({"_id": source_id})
        await self._audit.record(principal.org_id, principal, "knowledge_source.deleted", "knowledge_source",
                                 source_id, {"name": doc["name"]})

    async def _drop_blobs(self, doc: dict[str, Any]) -> None:
        await self._blobs.delete(blob_key(doc["org_id"], doc["_id"], int(doc["revision"])))

    async def search(self, principal: Principal, kb_id: str, body: SearchRequest) -> SearchResult:
        await self._kb(principal, kb_id)
        config = KnowledgeConfig(knowledge_base_ids=[kb_id], top_k=body.top_k,
                                 score_threshold=body.score_threshold, filters=body.filters)
        found = await self._retriever.retrieve(principal.org_id, config, body.question)
        if found.error is not None:
            raise ApiError(503, "retrieval_unavailable", f"Retrieval failed: {found.error}")
        return SearchResult(chunks=found.chunks, duration_ms=found.duration_ms)


def _kb_out(doc: dict[str, Any], sources: int, chunks: int) -> KnowledgeBaseOut:
    return KnowledgeBaseOut(id=doc["_id"], name=doc["name"], description=doc.get("description", ""),
                            source_count=sources, chunk_count=chunks, created_at=doc["created_at"],
                            updated_at=doc["updated_at"])


def _source_out(doc: dict[str, Any]) -> SourceOut:
    return SourceOut(id=doc["_id"], knowledge_base_id=doc["kb_id"], name=doc["name"], kind=doc["kind"],
                     size_bytes=doc["size_bytes"], status=doc["status"], error=doc.get("error"),
                     progress=doc.get("progress", 0.0), pages=doc.get("pages", 0),
                     chunk_count=doc.get("chunk_count", 0), revision=doc["revision"],
                     attempts=doc.get("attempts", 0), metadata=doc.get("metadata", {}),
                     created_at=doc["created_at"], updated_at=doc["updated_at"])
