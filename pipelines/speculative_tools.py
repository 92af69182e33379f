"""A speculative reply's tool calls wait for its turn to be confirmed, instead of withdrawing the reply.

Pipecat's LLM service withdraws a speculative inference (SPECULATIVE_LLM, pipelines/turns.py) that wants a tool call
(a tool's side effects cannot be held back by the speculation gate) and relies on the turn end to run a fresh
inference. But a turn end that confirms the speculation while that withdrawal is still on its way closes the turn
with no inference at all: the caller gets no reply and the tool never runs (seen under load in CI: the agent never
pressed its keys). Holding the calls until the gate settles removes the race: confirmed, they run once, as an
ordinary turn's would; withdrawn or interrupted, they are dropped and the inference on the committed text makes its
own."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InterruptionFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallFromLLM, LLMService


class HeldSpeculativeToolCalls(LLMService):
    """Mixed in before the concrete service class (PooledOpenAILLMService)."""

    _held_calls: list[FunctionCallFromLLM] | None = None

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]) -> None:
        if function_calls and self._speculation_gate.is_speculating:
            self._held_calls = list(function_calls)
            return
        await super().run_function_calls(function_calls)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, (EagerEndOfTurnCancelFrame, InterruptionFrame)):
            self._held_calls = None  # the guess was wrong or the caller cut in: the committed turn decides anew
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        await super().push_frame(frame, direction)  # a UserStoppedSpeakingFrame settles the gate here
        if (isinstance(frame, UserStoppedSpeakingFrame) and self._held_calls
                and not self._speculation_gate.is_speculating):
            calls, self._held_calls = self._held_calls, None
            await super().run_function_calls(calls)
