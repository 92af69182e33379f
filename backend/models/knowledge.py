"""Knowledge bases, their sources and the "test a question" box, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from backend.models.common import ApiModel
from core.knowledge.models import RetrievedChunk

MetaKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]
MetaValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-.:@ ]{1,100}$")]
SourceStatus = Literal["queued", "processing", "ready", "failed"]


class KnowledgeBaseCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, examples=["Clinic price list and policies"])
    description: str = Field(default="", max_length=500)


class KnowledgeBaseUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class KnowledgeBaseOut(BaseModel):
    id: str
    name: str
    description: str = ""
    source_count: int = 0
    chunk_count: int = 0
    created_at: datetime
    updated_at: datetime


class TextSourceCreate(ApiModel):
    """Pasted text, indexed like an uploaded .txt file."""

    name: str = Field(min_length=1, max_length=200, examples=["Opening hours"])
    text: str = Field(min_length=1, max_length=1_000_000)
    metadata: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=20)


class SourceOut(BaseModel):
    id: str
    knowledge_base_id: str
    name: str
    kind: Literal["pdf", "docx", "txt", "md", "csv", "text"]
    size_bytes: int
    status: SourceStatus
    error: str | None = Field(default=None, description="Why the last ingestion failed (status failed), or why it "
                                                        "is being retried (status queued)")
    progress: float = Field(default=0.0, ge=0, le=1)
    pages: int = 0
    chunk_count: int = Field(default=0, description="Chunks searchable now (the last revision that succeeded)")
    revision: int
    attempts: int = 0
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class SearchRequest(ApiModel):
    question: str = Field(min_length=1, max_length=1000)
    top_k: int = Field(default=3, ge=1, le=10)
    score_threshold: float = Field(default=0.0, ge=0, le=1)
    filters: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=10)


class SearchResult(BaseModel):
    chunks: list[RetrievedChunk]
    duration_ms: float
