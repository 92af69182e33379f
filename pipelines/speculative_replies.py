"""What keeps a speculative reply (SPECULATIVE_LLM, pipelines/turns.py) from acting on a guess, or acting twice.

Two races of Pipecat's speculative inference, both seen under load in CI:

- A withdrawn guess ran after all. The guess's context frame is a data frame and queues on its way to the LLM
  (behind a knowledge retrieval, say), while the withdrawal and the turn end are system frames that overtake it.
  Reaching the LLM after the turn end, the stale guess was taken for an ordinary inference and answered, and the
  committed turn's own inference answered again: two replies, and the tool calls of both ran (end_call twice). A
  guess reaching the LLM after a withdrawal that it overtook was held, and released by the next turn end beside
  that turn's reply. So each guess travels as a `SpeculativeContextFrame` naming its `TrackedSpeculation`, which the
  turn strategy marks withdrawn before it withdraws it; the LLM drops a withdrawn guess on arrival.
- A guess's tool call cancelled the guess. Pipecat withdraws a speculative inference that wants a tool call (a
  tool's side effects cannot be held back by the speculation gate) and relies on the turn end to run a fresh
  inference. But a turn end that confirms the guess while that withdrawal is still on its way closes the turn with
  no inference at all: the caller got no reply and the tool never ran (the agent never pressed its keys). Holding
  the calls until the gate settles removes the race: confirmed, they run once, as an ordinary turn's would;
  withdrawn or interrupted, they are dropped and the inference on the committed text makes its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallFromLLM, LLMService
from pipecat.turns.types import UserTurnSpeculation


@dataclass
class TrackedSpeculation(UserTurnSpeculation):
    """A guess that knows whether it was withdrawn: set by the turn strategy before the withdrawal goes out."""

    withdrawn: bool = False


@dataclass
class SpeculativeContextFrame(LLMContextFrame):
    """A guess's context, naming the guess so that the LLM can tell a withdrawn one when it finally arrives."""

    turn: TrackedSpeculation | None = None


class TrackedUserAggregator(LLMUserAggregator):
    """Pipecat's user aggregator, sending each guess as a `SpeculativeContextFrame` (the rest of
    `_run_speculative_inference` as Pipecat 1.14 has it: a provisional copy of the context with the guessed text).

    Caller audio ends here: its VAD is the last reader, and Pipecat's aggregator pushes every frame it does not
    consume on downstream (a queue, a task switch and observer events per 40 ms frame for nothing)."""

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if direction is FrameDirection.DOWNSTREAM and isinstance(frame, InputAudioRawFrame):
            return
        await super().push_frame(frame, direction)

    async def _run_speculative_inference(self, speculation: UserTurnSpeculation) -> None:
        provisional = LLMContext(
            messages=[*self._context.messages,
                      cast(LLMContextMessage, {"role": self.role, "content": speculation.text})],
            tools=self._context.tools,
            tool_choice=self._context.tool_choice,
        )
        turn = speculation if isinstance(speculation, TrackedSpeculation) else None
        await self.push_frame(SpeculativeContextFrame(context=provisional, speculation=True, turn=turn))


class TrackedAggregatorPair(LLMContextAggregatorPair):
    """Pipecat's aggregator pair (what FlowManager takes) with a `TrackedUserAggregator` as its user half. Pipecat's
    constructor is not called: it would build a second user aggregator that registers itself on the same turn
    strategies and VAD, and both would answer every turn."""

    def __init__(self, context: LLMContext, *, user_params: LLMUserAggregatorParams) -> None:
        self._user = TrackedUserAggregator(context, params=user_params)
        self._assistant = LLMAssistantAggregator(context, _paired_user_aggregator=self._user)


class GuardedSpeculativeReplies(LLMService):
    """Mixed in before the concrete service class (PooledOpenAILLMService)."""

    _held_calls: list[FunctionCallFromLLM] | None = None

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]) -> None:
        if function_calls and self._speculation_gate.is_speculating:
            self._held_calls = list(function_calls)
            return
        await super().run_function_calls(function_calls)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, SpeculativeContextFrame) and frame.turn is not None and frame.turn.withdrawn:
            logger.debug(f"{self}: dropping a guess withdrawn before it arrived ({frame.turn.text!r})")
            return
        if isinstance(frame, (EagerEndOfTurnCancelFrame, InterruptionFrame)):
            self._held_calls = None  # the guess was wrong or the caller cut in: the committed turn decides anew
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        await super().push_frame(frame, direction)  # a UserStoppedSpeakingFrame settles the gate here
        if (isinstance(frame, UserStoppedSpeakingFrame) and self._held_calls
                and not self._speculation_gate.is_speculating):
            calls, self._held_calls = self._held_calls, None
            await super().run_function_calls(calls)
