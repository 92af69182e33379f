"""The speculative reply start (pipelines/turns.py): the strategy driven frame by frame, with the real smart-turn
model loaded (it never gets enough audio to decide, which is the window the speculation uses)."""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from pipelines.shared_models import SharedModels
from pipelines.turns import SpeculativeTurnStopStrategy


async def _strategy() -> tuple[SpeculativeTurnStopStrategy, list[tuple[str, Any]]]:
    analyzer = SharedModels(smart_turn=True).turn_analyzer()
    assert analyzer is not None
    strategy = SpeculativeTurnStopStrategy(turn_analyzer=analyzer)
    await strategy.setup(FrameProcessorSetup(clock=SystemClock(), task_manager=TaskManager(loop=asyncio.get_running_loop()),
                                             pipeline_worker=None, audio_in_sample_rate=8000))  # type: ignore[arg-type]
    events: list[tuple[str, Any]] = []

    @strategy.event_handler("on_user_turn_inference_triggered")
    async def _triggered(_s: Any, speculation: Any = None) -> None:
        events.append(("inference", speculation.text if speculation else None))

    @strategy.event_handler("on_user_turn_stopped")
    async def _stopped(_s: Any, params: Any) -> None:
        events.append(("stopped", params.confirms_speculation))

    @strategy.event_handler("on_user_turn_speculation_cancelled")
    async def _cancelled(_s: Any) -> None:
        events.append(("cancelled", None))

    return strategy, events


def _final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "caller", "2026-01-01T00:00:00Z", finalized=True)


async def test_a_final_before_the_turn_end_starts_the_reply_and_the_turn_end_keeps_it() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("What are your opening hours?"))
    assert events == [("inference", "What are your opening hours?")]  # smart-turn has not decided yet
    await strategy.trigger_user_turn_stopped()  # smart-turn: complete; same words -> held reply released
    assert events[1:] == [("stopped", True)]
    assert strategy.speculation_hits == 1


async def test_speaking_again_withdraws_the_guess_and_new_words_restart_it() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_final("I would like"))
    await strategy.process_frame(VADUserStartedSpeakingFrame())  # the caller goes on
    await strategy.process_frame(_final("to book a table."))  # the ASR's final while VAD still hears speech
    assert events == [("inference", "I would like"), ("cancelled", None)]
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    assert events[2:] == [("inference", "I would like to book a table.")]
    await strategy.trigger_user_turn_stopped()
    assert events[-1] == ("stopped", True)


async def test_a_turn_that_ends_on_other_words_runs_a_fresh_reply() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_final("Hello there"))
    strategy._speculation.text = "something else"  # type: ignore[union-attr]  # as if the ASR had revised it
    await strategy.trigger_user_turn_stopped()
    assert events[1:] == [("cancelled", None), ("inference", None), ("stopped", False)]


async def test_a_guess_the_llm_withdrew_for_a_tool_call_is_answered_again_at_the_turn_end() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_final("Goodbye."))
    await strategy.process_frame(EagerEndOfTurnCancelFrame())  # the LLM service's own withdrawal
    await strategy.trigger_user_turn_stopped()
    assert events == [("inference", "Goodbye."), ("inference", None), ("stopped", False)]
