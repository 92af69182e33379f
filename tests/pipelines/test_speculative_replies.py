"""A speculative reply (pipelines/speculative_replies.py): its tool calls are held while the turn is unconfirmed, run
once when the turn end confirms it, dropped when the guess is withdrawn; an ordinary turn's calls run at once. A guess
withdrawn before it reached the LLM never runs; one confirmed before it arrived runs as the turn's reply."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseStartFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallFromLLM, LLMService

from pipelines.speculative_replies import (
    GuardedSpeculativeReplies,
    SpeculativeContextFrame,
    TrackedSpeculation,
    TrackedUserAggregator,
)


class _Ran(LLMService):
    def __init__(self) -> None:
        super().__init__()
        self.ran: list[FunctionCallFromLLM] = []
        self.answered: list[LLMContextFrame] = []  # the contexts an inference would have run on

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            self.answered.append(frame)

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]) -> None:
        self.ran.extend(function_calls)


class _Service(GuardedSpeculativeReplies, _Ran):
    pass


CALL = FunctionCallFromLLM(function_name="send_digits", tool_call_id="c1", arguments={"digits": "2"},
                           context=None)  # type: ignore[arg-type]


async def _speculating() -> _Service:
    service = _Service()
    service._speculation_gate.begin_speculation(True)
    await service.push_frame(LLMFullResponseStartFrame())
    await service.run_function_calls([CALL])
    return service


async def test_calls_of_a_speculative_reply_wait_and_run_once_when_the_turn_end_confirms_it() -> None:
    service = await _speculating()
    assert service.ran == []
    await service.push_frame(UserStoppedSpeakingFrame())
    assert service.ran == [CALL]
    await service.push_frame(UserStoppedSpeakingFrame())
    assert service.ran == [CALL]


async def test_calls_of_a_withdrawn_speculative_reply_never_run() -> None:
    service = await _speculating()
    await service.process_frame(EagerEndOfTurnCancelFrame(), FrameDirection.DOWNSTREAM)
    await service.push_frame(UserStoppedSpeakingFrame())
    assert service.ran == []


async def test_calls_of_an_ordinary_turn_run_at_once() -> None:
    service = _Service()
    await service.run_function_calls([CALL])
    assert service.ran == [CALL]


def _guess(text: str, context: LLMContext | None = None) -> SpeculativeContextFrame:
    return SpeculativeContextFrame(context=context or LLMContext(), speculation=True, turn=TrackedSpeculation(text=text))


async def test_a_guess_withdrawn_before_it_reached_the_llm_never_runs() -> None:
    """The withdrawal and the turn end overtake the guess's queued context frame; taken for an ordinary inference,
    it answered beside the committed turn's own (CI: end_call ran twice)."""
    service = _Service()
    stale = _guess("Bye")
    stale.turn.withdrawn = True  # type: ignore[union-attr]  # as the turn strategy marks it before withdrawing
    await service.process_frame(EagerEndOfTurnCancelFrame(), FrameDirection.DOWNSTREAM)
    await service.push_frame(UserStoppedSpeakingFrame())
    await service.process_frame(stale, FrameDirection.DOWNSTREAM)
    committed = LLMContextFrame(context=LLMContext())
    await service.process_frame(committed, FrameDirection.DOWNSTREAM)
    assert service.answered == [committed]


async def test_a_guess_confirmed_before_it_reached_the_llm_runs_as_the_turns_reply() -> None:
    service = _Service()
    await service.push_frame(UserStoppedSpeakingFrame())  # the confirmation overtook it
    confirmed = _guess("Bye")
    await service.process_frame(confirmed, FrameDirection.DOWNSTREAM)
    assert service.answered == [confirmed]
    assert not service._speculation_gate.is_speculating  # nothing follows to release it, so it is not held


class _Pushed(TrackedUserAggregator):
    pushed: list[Frame]

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        self.pushed.append(frame)


async def test_the_user_aggregator_sends_a_guess_naming_it_on_a_copy_of_the_context() -> None:
    context = LLMContext(messages=[{"role": "system", "content": "Be brief."}])
    aggregator = _Pushed(context)
    aggregator.pushed = []
    guess = TrackedSpeculation(text="What are your opening hours?")
    await aggregator._run_speculative_inference(guess)
    [frame] = aggregator.pushed
    assert isinstance(frame, SpeculativeContextFrame) and frame.speculation and frame.turn is guess
    assert frame.context.get_messages()[-1] == {"role": "user", "content": "What are your opening hours?"}
    assert len(context.get_messages()) == 1  # the real context records only the committed turn
