"""Typed values that cross module boundaries: a chunk to index, a retrieved chunk, a retrieval's outcome."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChunkIn(BaseModel):
    chunk_id: str
    kb_id: str
    source_id: str
    source_name: str
    revision: int
    page: int | None = None  # 1-based page of a PDF; the row number of a CSV
    text: str
    tags: list[str] = Field(default_factory=list, description="'key=value' metadata, for filters")


class RetrievedChunk(BaseModel):
    chunk_id: str
    kb_id: str
    source_id: str
    source_name: str
    page: int | None = None
    text: str
    score: float = Field(description="0.8 x cosine similarity + 0.2 x the keyword (BM25) score normalised to the "
                                     "best keyword hit of this query")
    vector_score: float
    keyword_score: float

    def label(self) -> str:
        return f"{self.source_name}, p. {self.page}" if self.page else self.source_name


class Retrieval(BaseModel):
    """What one question found, or why it found nothing (the call goes on without retrieval)."""

    chunks: list[RetrievedChunk] = Field(default_factory=list)
    error: str | None = None
    duration_ms: float = 0.0


def tag(key: str, value: str) -> str:
    return f"{key.strip().lower()}={value.strip().lower()}"
