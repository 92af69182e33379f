"""Turns the aggregators' turn events into TurnRecorded events on the call's timeline, as they happen, with the
agent's PII redaction applied to the text (core/redaction.py): nothing after this point sees the original."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMUserAggregator,
    UserTurnStoppedMessage,
)

from core.call_events import TurnKnowledge, TurnLatency, TurnRecorded
from core.knowledge.models import Retrieval
from core.redaction import Redactor
from pipelines.control import CallEventSink
from pipelines.observers import LatencyObserver, TurnTiming


class TranscriptWriter:
    def __init__(self, call_id: str, events: CallEventSink, latency: LatencyObserver,
                 redactor: Redactor | None = None) -> None:
        self._call_id = call_id
        self._redactor = redactor
        self._events = events
        self._latency = latency
        self._index = itertools.count()
        self._agent_started_ms: int | None = None
        self._pending_latency: TurnLatency | None = None
        self._last_caller_timing: TurnTiming | None = None
        self._pending_knowledge: TurnKnowledge | None = None
        latency.on_turn_complete = self._on_timing

    def attach(self, user: LLMUserAggregator, assistant: LLMAssistantAggregator,
               before_caller_turn: Callable[[str], None] | None = None) -> None:
        """`before_caller_turn` sees the caller's words first (the keypad, which may learn they are a secret)."""
        @user.event_handler("on_user_turn_stopped")
        async def _caller(_agg: Any, _strategy: Any, message: UserTurnStoppedMessage) -> None:
            if before_caller_turn is not None:
                before_caller_turn(message.content or "")
            self.caller_turn(message.content or "")

        @assistant.event_handler("on_assistant_turn_started")
        async def _agent_started(_agg: Any) -> None:
            self._agent_started_ms = self._events.timeline_ms()

        @assistant.event_handler("on_assistant_turn_stopped")
        async def _agent(_agg: Any, message: AssistantTurnStoppedMessage) -> None:
            self.agent_turn(message.content, message.interrupted)

    def knowledge(self, retrieval: Retrieval) -> None:
        """Retrieved for the answer being prepared: stored on the next agent turn."""
        self._pending_knowledge = TurnKnowledge(
            chunk_ids=[c.chunk_id for c in retrieval.chunks], sources=[c.label() for c in retrieval.chunks],
            error=retrieval.error, duration_ms=retrieval.duration_ms)

    def _on_timing(self, timing: TurnTiming) -> None:
        self._pending_latency = timing.latency()

    def caller_turn(self, text: str) -> None:
        if not text.strip():
            return
        timing = self._latency.current_or_last()
        now = self._events.timeline_ms()
        start = self._events.timeline_ms(timing.speech_start_s) if timing and timing.speech_start_s else now
        end = self._events.timeline_ms(timing.end_of_speech_s) if timing and timing.end_of_speech_s else now
        self._emit("caller", text, start, max(start, end), False, None)

    def dtmf(self, digits: str) -> None:
        now = self._events.timeline_ms()
        self._emit("caller", f"[DTMF {digits}]", now, now, False, None)

    def agent_turn(self, text: str, interrupted: bool) -> None:
        now = self._events.timeline_ms()
        start = self._agent_started_ms if self._agent_started_ms is not None else now
        self._agent_started_ms = None
        latency, self._pending_latency = self._pending_latency, None
        knowledge, self._pending_knowledge = self._pending_knowledge, None
        if not text.strip() and not interrupted:
            return
        self._emit("agent", text, start, max(start, now), interrupted, latency, knowledge)

    def system(self, text: str) -> None:
        now = self._events.timeline_ms()
        self._emit("system", text, now, now, False, None)

    def keep_secret(self, digits: str) -> None:
        """Sensitive digits the caller entered: never written in clear, whoever says them later."""
        if self._redactor is not None:
            self._redactor.remember(digits)

    def redact(self, text: str) -> str:
        """The agent's redaction, for text shown outside the transcript (interim lines in the live view)."""
        return self._redactor.redact(text).text if self._redactor is not None else text

    def _emit(self, speaker: str, text: str, start_ms: int, end_ms: int, interrupted: bool,
              latency: TurnLatency | None, knowledge: TurnKnowledge | None = None) -> None:
        if self._redactor is not None and self._redactor.enabled:
            redacted = self._redactor.redact(text)
            text = redacted.text
            if redacted.kinds and speaker == "caller":
                self._events.redacted(max(0, start_ms), max(0, end_ms))
        index = next(self._index)
        self._events.turn(TurnRecorded(
            event_id=f"{self._call_id}-turn-{index}"[:64], call_id=self._call_id, turn_index=index,
            speaker=speaker,  # type: ignore[arg-type]
            text=text[:20000], start_ms=max(0, start_ms), end_ms=max(0, end_ms), interrupted=interrupted,
            latency=latency, knowledge=knowledge,
        ))
