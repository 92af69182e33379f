"""Client of any OpenAI-compatible `/v1/embeddings` endpoint (the embedded speech.embed server, OpenAI, vLLM, TEI,
Ollama). Vectors are L2-normalised here, so the store's cosine distance works whatever the server returns.

Tenant-configured endpoints will go through the platform's egress guard once it lands (see docs/knowledge-base.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httpx
import numpy as np


class Embedder(Protocol):
    """Texts in, L2-normalised float32 vectors out: this client, or the voice server's in-process query encoder."""

    async def embed(self, texts: list[str]) -> np.ndarray: ...


class EmbeddingsUnavailable(Exception):
    """The endpoint is down, too slow or answered something that is not embeddings."""


class EmbeddingsClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, model: str, api_key: str | Callable[[], str] = "",
                 timeout_s: float = 10.0, batch: int = 32) -> None:
        """`api_key`: the endpoint's key, or a function giving it per request (a service token for the embedded
        server, `ServiceTokenSource.platform_key`)."""
        self._http = http
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._batch = batch

    async def embed(self, texts: list[str]) -> np.ndarray:
        parts = [await self._embed_batch(texts[i:i + self._batch]) for i in range(0, len(texts), self._batch)]
        vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        try:
            key = self._api_key() if callable(self._api_key) else self._api_key
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            response = await self._http.post(self._url, headers=headers, timeout=self._timeout_s,
                                              json={"input": texts, "model": self._model})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingsUnavailable(f"embeddings endpoint {self._url}: {type(exc).__name__}: {exc}"[:300]) from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingsUnavailable(f"embeddings endpoint {self._url}: {len(vectors)} vectors for {len(texts)} texts")
        return vectors
