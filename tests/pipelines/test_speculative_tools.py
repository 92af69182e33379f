"""A speculative reply's tool calls (pipelines/speculative_tools.py): held while the turn is unconfirmed, run once
when the turn end confirms it, dropped when the guess is withdrawn; an ordinary turn's calls run at once."""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    LLMFullResponseStartFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallFromLLM, LLMService

from pipelines.speculative_tools import HeldSpeculativeToolCalls


class _Ran(LLMService):
    def __init__(self) -> None:
        super().__init__()
        self.ran: list[FunctionCallFromLLM] = []

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]) -> None:
        self.ran.extend(function_calls)


class _Service(HeldSpeculativeToolCalls, _Ran):
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
