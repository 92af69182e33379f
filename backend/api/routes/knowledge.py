"""/api/v1/knowledge-bases: knowledge bases, their sources (upload, pasted text, delete) and a test search."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Response, UploadFile, status
from pydantic import TypeAdapter, ValidationError

from backend.api.deps import AgentsRead, AgentsWrite, ServicesDep
from backend.api.responses import AUTHENTICATED, NOT_FOUND, _error
from backend.errors import bad_request
from backend.models.knowledge import (
    KnowledgeBaseCreate,
    KnowledgeBaseOut,
    KnowledgeBaseUpdate,
    MetaKey,
    MetaValue,
    SearchRequest,
    SearchResult,
    SourceOut,
    TextSourceCreate,
)

router = APIRouter(prefix="/knowledge-bases", tags=["knowledge"], responses=AUTHENTICATED)
KbId = Annotated[str, Path(min_length=1, max_length=64)]
UPLOAD_REFUSED: dict[int | str, dict[str, Any]] = {400: _error("Empty file or bad metadata"), 413: _error("Over KNOWLEDGE_MAX_UPLOAD_BYTES"),
                  415: _error("Not PDF, DOCX, TXT, Markdown or CSV")}
_METADATA = TypeAdapter(dict[MetaKey, MetaValue])


@router.get("")
async def list_knowledge_bases(principal: AgentsRead, services: ServicesDep) -> list[KnowledgeBaseOut]:
    return await services.knowledge.list_kbs(principal)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_knowledge_base(body: KnowledgeBaseCreate, principal: AgentsWrite,
                                services: ServicesDep) -> KnowledgeBaseOut:
    return await services.knowledge.create_kb(principal, body)


@router.get("/{kb_id}", responses=NOT_FOUND)
async def get_knowledge_base(kb_id: KbId, principal: AgentsRead, services: ServicesDep) -> KnowledgeBaseOut:
    return await services.knowledge.get_kb(principal, kb_id)


@router.patch("/{kb_id}", responses=NOT_FOUND)
async def update_knowledge_base(kb_id: KbId, body: KnowledgeBaseUpdate, principal: AgentsWrite,
                                services: ServicesDep) -> KnowledgeBaseOut:
    return await services.knowledge.update_kb(principal, kb_id, body)


@router.delete("/{kb_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_knowledge_base(kb_id: KbId, principal: AgentsWrite, services: ServicesDep) -> Response:
    """With its sources and every chunk."""
    await services.knowledge.delete_kb(principal, kb_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{kb_id}/sources", responses=NOT_FOUND)
async def list_sources(kb_id: KbId, principal: AgentsRead, services: ServicesDep) -> list[SourceOut]:
    """Each source's status (queued, processing with progress, ready, failed with the reason), pages, chunks."""
    return await services.knowledge.list_sources(principal, kb_id)


@router.post("/{kb_id}/sources", status_code=status.HTTP_202_ACCEPTED, responses={**NOT_FOUND, **UPLOAD_REFUSED})
async def upload_source(
    kb_id: KbId, principal: AgentsWrite, services: ServicesDep,
    file: Annotated[UploadFile, File(description="PDF, DOCX, TXT, Markdown (.md) or CSV (one entry per row)")],
    metadata: Annotated[str, Form(max_length=4000, description='JSON object, e.g. {"branch": "Downtown"}; '
                                                              "agents can filter on it")] = "{}",
) -> SourceOut:
    """Queued for indexing (202). A file with the same name in this knowledge base replaces it: the old chunks
    stay searchable until the new ones are in. 413 over the size cap, 415 for other types, 400 for empty files."""
    limit = services.knowledge.max_upload_bytes
    data = await file.read(limit + 1)
    try:
        meta = _METADATA.validate_python(json.loads(metadata))
    except (ValueError, ValidationError) as exc:
        raise bad_request(f"metadata: a JSON object of short text values expected ({str(exc)[:200]})",
                          path="metadata") from exc
    return await services.knowledge.add_source(principal, kb_id, file.filename or "", data, meta)


@router.post("/{kb_id}/sources/text", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def add_text_source(kb_id: KbId, body: TextSourceCreate, principal: AgentsWrite,
                          services: ServicesDep) -> SourceOut:
    """Pasted text; the same name replaces an earlier paste."""
    return await services.knowledge.add_source(principal, kb_id, body.name, body.text.encode(), body.metadata,
                                               kind="text")


@router.delete("/{kb_id}/sources/{source_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_source(kb_id: KbId, source_id: KbId, principal: AgentsWrite, services: ServicesDep) -> Response:
    """The source, its file and its chunks."""
    await services.knowledge.delete_source(principal, kb_id, source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{kb_id}/search", responses={**NOT_FOUND, 503: _error("The embeddings endpoint or store is down")})
async def search_knowledge_base(kb_id: KbId, body: SearchRequest, principal: AgentsRead,
                                services: ServicesDep) -> SearchResult:
    """What an agent would retrieve for this question: chunks with their hybrid, vector and keyword scores."""
    return await services.knowledge.search(principal, kb_id, body)
