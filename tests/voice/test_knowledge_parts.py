"""The knowledge processor in a Pipecat pipeline, with the real embedding server and a LanceDB table: it injects
the best chunks before the caller's last message (replacing the previous turn's), reports what it retrieved, and
lets the turn through untouched, reporting the error, when the embeddings endpoint is down."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
from pipecat.frames.frames import LLMContextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from backend.knowledge.chunking import chunk_pages
from backend.knowledge.extract import extract
from core.agent_config import KnowledgeConfig
from core.knowledge.embeddings import EmbeddingsClient
from core.knowledge.models import ChunkIn, Retrieval
from core.knowledge.retriever import Retriever
from core.knowledge.store import KnowledgeStore
from pipelines.knowledge import MARKER, KnowledgeInjector
from voicectl.procs import free_port
from voicectl.speech_auth import speech_token

DOCS = Path(__file__).resolve().parents[1] / "knowledge_data"
CONFIG = KnowledgeConfig(knowledge_base_ids=["kb"], top_k=2)


async def _store(embeddings: EmbeddingsClient) -> KnowledgeStore:
    store = KnowledgeStore(tempfile.mkdtemp(prefix="kb-parts-"), {})
    pieces = chunk_pages(extract("txt", (DOCS / "clinic_policies.txt").read_bytes()))
    chunks = [ChunkIn(chunk_id=f"p-{i}", kb_id="kb", source_id="p", source_name="policies.txt", revision=1,
                      text=c.text) for i, c in enumerate(pieces)]
    await store.add("org", chunks, await embeddings.embed([c.text for c in chunks]))
    await store.finish_source("org", "p", 1)
    return store


def _knowledge_messages(context: LLMContext) -> list[Any]:
    return [m for m in context.get_messages() if isinstance(m, dict) and str(m.get("content", "")).startswith(MARKER)]


async def test_injects_before_the_last_user_message_and_replaces_the_previous_turns(embed_url: str) -> None:
    async with httpx.AsyncClient() as http:
        embeddings = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("tests"))
        retriever = Retriever(embeddings, await _store(embeddings))
        seen: list[Retrieval] = []
        context = LLMContext([{"role": "assistant", "content": "Hello, how can I help?"},
                              {"role": "user", "content": "Where can I park my car?"}])
        await run_test(KnowledgeInjector(retriever, "org", CONFIG, seen.append),
                       frames_to_send=[LLMContextFrame(context)], expected_down_frames=[LLMContextFrame])
        messages = context.get_messages()
        assert str(messages[-2]["content"]).startswith(MARKER) and "Maplewood" in str(messages[-2]["content"])
        assert seen[0].error is None and seen[0].chunks[0].source_name == "policies.txt"

        context.add_messages([{"role": "assistant", "content": "In the Maplewood garage."},
                              {"role": "user", "content": "Do you take American Express?"}])
        await run_test(KnowledgeInjector(retriever, "org", CONFIG, seen.append),
                       frames_to_send=[LLMContextFrame(context)], expected_down_frames=[LLMContextFrame])
        injected = _knowledge_messages(context)
        assert len(injected) == 1 and "American Express" in str(injected[0]["content"])
        assert context.get_messages()[-2] is injected[0]


async def test_a_dead_embeddings_endpoint_leaves_the_turn_alone_and_says_so(embed_url: str) -> None:
    async with httpx.AsyncClient() as http:
        store = await _store(EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("tests")))
        dead = Retriever(EmbeddingsClient(http, f"http://127.0.0.1:{free_port()}/v1", "x", timeout_s=1.0), store)
        seen: list[Retrieval] = []
        context = LLMContext([{"role": "user", "content": "Where can I park my car?"}])
        await run_test(KnowledgeInjector(dead, "org", CONFIG, seen.append),
                       frames_to_send=[LLMContextFrame(context)], expected_down_frames=[LLMContextFrame])
        assert context.get_messages() == [{"role": "user", "content": "Where can I park my car?"}]
        assert seen[0].chunks == [] and seen[0].error and "embeddings endpoint" in seen[0].error


class _Events:
    def __init__(self) -> None:
        self.tools: list[Any] = []

    def tool(self, event: Any) -> None:
        self.tools.append(event)


async def test_tool_mode_returns_facts_and_records_the_call(embed_url: str) -> None:
    """knowledge.mode = tool: the LLM's search_knowledge(query) gets the facts; the call records the tool use and
    the retrieval (for the agent's turn)."""
    from types import SimpleNamespace

    from core.agent_config import AgentConfig
    from pipelines.knowledge import search_knowledge_tool
    from pipelines.tools import ToolContext

    async with httpx.AsyncClient() as http:
        embeddings = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("tests"))
        retriever = Retriever(embeddings, await _store(embeddings))
        agent = AgentConfig(knowledge={"knowledge_base_ids": ["kb"], "mode": "tool", "top_k": 1},
                            llm={"tool_choice": "search_knowledge"})
        events, seen, results = _Events(), [], []
        ctx = ToolContext(agent=agent, call_id="c1", control=None, events=events, http=http)  # type: ignore[arg-type]
        tool = search_knowledge_tool(ctx, retriever, "org", seen.append)
        assert tool.schema.name == "search_knowledge" and "search_knowledge" in agent.tool_names()

        async def result_callback(result: Any, properties: Any = None) -> None:
            results.append(result)

        await tool.handler(SimpleNamespace(arguments={"query": "parking garage"},  # type: ignore[arg-type]
                                           result_callback=result_callback))
        assert "Maplewood" in results[0]["facts"][0]
        assert events.tools[0].name == "search_knowledge" and events.tools[0].ok
        assert seen[0].chunks[0].source_name == "policies.txt"


class _CountingRetriever(Retriever):
    """The real retriever, counting which questions it was asked."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: list[str] = []

    async def retrieve(self, org_id: str, config: KnowledgeConfig, question: str,
                       version: int | None = None) -> Retrieval:
        self.asked.append(question)
        return await super().retrieve(org_id, config, question, version)


async def test_retrieval_starts_on_the_final_transcript_and_is_redone_when_the_turn_says_more(embed_url: str) -> None:
    from pipecat.frames.frames import TranscriptionFrame
    from pipecat.pipeline.pipeline import Pipeline

    async with httpx.AsyncClient() as http:
        embeddings = EmbeddingsClient(http, embed_url, "all-MiniLM-L6-v2", lambda: speech_token("tests"))
        retriever = _CountingRetriever(embeddings, await _store(embeddings))
        seen: list[Retrieval] = []
        injector = KnowledgeInjector(retriever, "org", CONFIG, seen.append)
        context = LLMContext([{"role": "user", "content": "Where can I park my car?"}])
        await run_test(Pipeline([injector.tap, injector]), frames_to_send=[
            TranscriptionFrame("Where can I park", "caller", ""), TranscriptionFrame(" my car? ", "caller", ""),
            LLMContextFrame(context)], expected_down_frames=[TranscriptionFrame, TranscriptionFrame, LLMContextFrame])
        # each final (re)started the retrieval; the turn's words are the finals' (spacing aside): used, not redone
        assert retriever.asked[-1] == "Where can I park  my car? " and "Where can I park my car?" not in retriever.asked
        assert len(seen) == 1 and "Maplewood" in str(context.get_messages()[-2]["content"])

        retriever.asked.clear()
        injector = KnowledgeInjector(retriever, "org", CONFIG, seen.append)
        context = LLMContext([{"role": "user", "content": "Where can I park my car? And do you take cheques?"}])
        await run_test(Pipeline([injector.tap, injector]), frames_to_send=[
            TranscriptionFrame("Where can I park my car?", "caller", ""), LLMContextFrame(context)],
            expected_down_frames=[TranscriptionFrame, LLMContextFrame])
        # the turn ended with more words than the transcript seen early: retrieved afresh for all of them
        assert retriever.asked == ["Where can I park my car?", "Where can I park my car? And do you take cheques?"]
        assert seen[-1] is injector._last[1]  # type: ignore[index]  # noqa: SLF001 - the retrieval the turn used
        assert "cheques" in str(context.get_messages()[-2]["content"]).lower()
