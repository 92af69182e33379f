"""The text end-of-turn signal (pipelines/turn_end.py): smart-turn's "incomplete" waits only TURN_TEXT_FALLBACK_S
when the final transcript reads as a finished sentence, and its full fallback otherwise. Driven frame by frame with
the real smart-turn model loaded (it gets no audio, so it calls every turn incomplete: the case this is for)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from pipelines.shared_models import SharedModels
from pipelines.turn_end import TextAwareTurnStopStrategy, transcript_reads_complete

FALLBACK_S = 0.3


async def _strategy() -> tuple[TextAwareTurnStopStrategy, list[float]]:
    analyzer = SharedModels(smart_turn=True).turn_analyzer()
    assert analyzer is not None
    strategy = TextAwareTurnStopStrategy(turn_analyzer=analyzer, text_fallback_s=FALLBACK_S)
    await strategy.setup(FrameProcessorSetup(clock=SystemClock(), task_manager=TaskManager(loop=asyncio.get_running_loop()),
                                             pipeline_worker=None, audio_in_sample_rate=8000))  # type: ignore[arg-type]
    stopped: list[float] = []

    @strategy.event_handler("on_user_turn_stopped")
    async def _stopped(_s: Any, _params: Any) -> None:
        stopped.append(time.time())

    return strategy, stopped


def _final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "caller", "2026-01-01T00:00:00Z", finalized=True)


@pytest.mark.parametrize(("text", "complete"), [
    ("What time do you close?", True), ("No, thank you.", True), ("I'd like to book a table.", True),
    ("I'm calling about my.", False), ("The problem is that", False), ("Could you tell me", False), ("", False)])
def test_a_transcript_reads_complete_when_it_ends_a_sentence_on_a_word_that_does_not_hang(
        text: str, complete: bool) -> None:
    assert transcript_reads_complete(text) is complete


async def test_a_finished_question_that_smart_turn_calls_unfinished_ends_after_the_text_fallback() -> None:
    strategy, stopped = await _strategy()
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("What time do you close?"))
    await asyncio.sleep(FALLBACK_S + 0.5)
    assert len(stopped) == 1


async def test_a_fragment_waits_for_smart_turns_own_fallback() -> None:
    strategy, stopped = await _strategy()
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("I'm calling about my"))
    await asyncio.sleep(FALLBACK_S + 0.5)
    assert stopped == []


async def test_speaking_again_cancels_the_shortened_wait() -> None:
    strategy, stopped = await _strategy()
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("I need to reschedule my appointment."))
    await strategy.process_frame(VADUserStartedSpeakingFrame())  # the caller goes on before the wait is over
    await asyncio.sleep(FALLBACK_S + 0.5)
    assert stopped == []
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("I need to reschedule my appointment because I am ill."))
    await asyncio.sleep(FALLBACK_S + 0.5)
    assert len(stopped) == 1
