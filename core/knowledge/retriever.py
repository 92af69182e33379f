"""One question in, the best chunks out: embed the question, search the organisation's table, time it.

Used per caller turn in a call and by the Knowledge page's "test a question" box. A failure (embeddings endpoint
down, store unreachable) is returned as `Retrieval.error`, never raised: the call goes on without retrieval.
"""

from __future__ import annotations

import logging
import time

from core.agent_config import KnowledgeConfig
from core.knowledge.embeddings import Embedder, EmbeddingsUnavailable
from core.knowledge.models import Retrieval, tag
from core.knowledge.store import KnowledgeStore, KnowledgeStoreError

log = logging.getLogger(__name__)


class Retriever:
    def __init__(self, embeddings: Embedder, store: KnowledgeStore) -> None:
        self.embeddings = embeddings
        self.store = store

    async def retrieve(self, org_id: str, config: KnowledgeConfig, question: str,
                       version: int | None = None) -> Retrieval:
        """`version`: the organisation's knowledge version the call was set up with (its resolved agent)."""
        started = time.perf_counter()
        try:
            vector = (await self.embeddings.embed([question]))[0]
            chunks = await self.store.search(
                org_id, config.knowledge_base_ids, vector, question, top_k=config.top_k,
                threshold=config.score_threshold, tags=[tag(k, v) for k, v in config.filters.items()],
                version=version)
        except (EmbeddingsUnavailable, KnowledgeStoreError, OSError, ValueError, RuntimeError) as exc:
            log.warning("knowledge retrieval failed", extra={"org_id": org_id, "error": str(exc)[:300]})
            return Retrieval(error=str(exc)[:300], duration_ms=_ms(started))
        return Retrieval(chunks=chunks, duration_ms=_ms(started))


    def prefetch(self, org_id: str, version: int | None) -> None:
        """A call with knowledge is starting: get the organisation's table copied locally (never raises)."""
        try:
            self.store.prefetch(org_id, version)
        except (OSError, RuntimeError) as exc:
            log.warning("knowledge prefetch failed", extra={"org_id": org_id, "error": str(exc)[:300]})


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
