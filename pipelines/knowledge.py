"""Knowledge retrieval in the call: the agent answers from the organisation's documents.

Inject mode (default): `KnowledgeInjector` sits between the user aggregator and the LLM. On each context the
aggregator sends (a finished caller turn), it retrieves the best chunks for the caller's last words and puts them,
as one system message, right before that user message; the previous turn's injected message is removed, so the
context never fills up with old chunks. A small model (SmolLM2-135M) answers far more reliably when the facts sit
next to the question than when it must decide to call a tool.

Early start: the injector's `tap` sits before the user aggregator and sees the ASR's final transcripts; on each one
it starts retrieving for the turn's text so far, while VAD and smart-turn still decide whether the turn is over
(typically tens of ms). When the turn ends with that text (spacing aside), the injector uses that retrieval; any other text
(more words came, the aggregator dropped some) is retrieved afresh, so the answer never rests on other words.

Tool mode: the LLM is offered `search_knowledge(query)` and decides when to call it (needs a capable model).

Either way each retrieval is reported to `on_retrieval` (the transcript stores the chunk ids on the agent's turn),
and a failed retrieval (embeddings endpoint down) never stops the call: the LLM answers without knowledge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import Frame, LLMContextFrame, TranscriptionFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams

from core.agent_config import KnowledgeConfig
from core.knowledge.models import Retrieval
from core.knowledge.retriever import Retriever
from pipelines.tools import ToolContext, ToolRegistration, record_tool

log = logging.getLogger(__name__)
MARKER = "[knowledge]"
# Short: a 135M model follows a terse "facts" block better than a long instruction (measured on a handful of
# sampled answers; see docs/knowledge-base.md).
_INSTRUCTION = "Facts for the caller's next question (answer from them, with their exact names and numbers):"


def knowledge_message(retrieval: Retrieval) -> str:
    facts = "\n".join(f"- {chunk.text}" for chunk in retrieval.chunks)
    return f"{MARKER} {_INSTRUCTION}\n{facts}"


class KnowledgeInjector(FrameProcessor):
    def __init__(self, retriever: Retriever, org_id: str, config: KnowledgeConfig,
                 on_retrieval: Callable[[Retrieval], None], version: int | None = None) -> None:
        super().__init__(name="knowledge")
        self._retriever = retriever
        self._org_id = org_id
        self._version = version
        retriever.prefetch(org_id, version)  # the table's local copy, ready by the caller's first question
        self._config = config
        self._on_retrieval = on_retrieval
        self._last: tuple[str, Retrieval] | None = None  # a speculative and a confirmed context ask the same
        self._early: tuple[str, asyncio.Task[Retrieval]] | None = None  # started on the final transcript
        self.tap = TranscriptTap(self)

    def start_early(self, question: str) -> None:
        """The turn's words so far (finals joined as the user aggregator joins them): start retrieving them."""
        if self._early is not None and self._early[0] == _words(question):
            return
        self._drop_early()
        self._early = (_words(question), asyncio.create_task(
            self._retriever.retrieve(self._org_id, self._config, question, self._version)))

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()  # nobody will ask for it
            self._early = None

    async def cleanup(self) -> None:
        self._drop_early()
        await super().cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._inject(frame.context)
        await self.push_frame(frame, direction)

    async def _inject(self, context: LLMContext) -> None:
        messages: list[Any] = [m for m in context.get_messages() if not _is_injected(m)]
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if _role(messages[i]) == "user"), None)
        if last_user is None or last_user != len(messages) - 1:
            context.set_messages(messages)  # a tool result or a reminder: no new question
            return
        question = _text(messages[last_user])
        early, self._early = self._early, None
        self.tap.turn_ended()
        if self._last is not None and self._last[0] == question:
            retrieval = self._last[1]
        else:
            if early is not None and early[0] == _words(question):
                retrieval = await early[1]  # started on the final transcript, for exactly these words
            else:
                if early is not None:
                    early[1].cancel()
                retrieval = await self._retriever.retrieve(self._org_id, self._config, question, self._version)
            self._last = (question, retrieval)
            self._on_retrieval(retrieval)
        if retrieval.chunks:
            messages.insert(last_user, {"role": "system", "content": knowledge_message(retrieval)})
        context.set_messages(messages)
        log.debug("knowledge for %r: %s", question, [c.chunk_id for c in retrieval.chunks])


class TranscriptTap(FrameProcessor):
    """Before the user aggregator: hands the turn's final transcripts to the injector as they arrive."""

    def __init__(self, injector: KnowledgeInjector) -> None:
        super().__init__(name="knowledge-tap")
        self._injector = injector
        self._finals: list[str] = []

    def turn_ended(self) -> None:
        self._finals = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and frame.text.strip():
            self._finals.append(frame.text)
            self._injector.start_early(" ".join(self._finals))
        await self.push_frame(frame, direction)


def search_knowledge_tool(ctx: ToolContext, retriever: Retriever, org_id: str,
                          on_retrieval: Callable[[Retrieval], None], version: int | None = None) -> ToolRegistration:
    config = ctx.agent.knowledge
    retriever.prefetch(org_id, version)

    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        query = str((params.arguments or {}).get("query", "")).strip()[:500]
        retrieval = (await retriever.retrieve(org_id, config, query, version) if query
                     else Retrieval(error="empty query"))
        on_retrieval(retrieval)
        record_tool(ctx, "search_knowledge", retrieval.error is None, started,
                    retrieval.error or f"{len(retrieval.chunks)} chunks", {"query": query})
        if retrieval.error is not None:
            await params.result_callback({"error": "the knowledge base is unavailable right now"})
        else:
            await params.result_callback({"facts": [c.text for c in retrieval.chunks]})

    schema = FunctionSchema(
        name="search_knowledge",
        description="Search the business's documents (prices, policies, opening hours, FAQs) for facts to answer "
                    "the caller. Call it before answering any question about the business.",
        properties={"query": {"type": "string", "description": "What to look up, in a few words."}},
        required=["query"],
    )
    return ToolRegistration(schema, handler)


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _words(text: str) -> str:
    """Spacing aside, the same text: the same tokens for the embedding model and the keyword index."""
    return " ".join(text.split())


def _is_injected(message: Any) -> bool:
    return _role(message) == "system" and _text(message).startswith(MARKER)
