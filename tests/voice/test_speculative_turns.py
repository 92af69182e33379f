"""The speculative reply start (pipelines/turns.py): the strategy driven frame by frame, with the real smart-turn
model loaded (it never gets enough audio to decide, which is the window the speculation uses)."""

from __future__ import annotations

import asyncio
from typing import Any

import riva.client.proto.riva_asr_pb2 as rasr
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from pipelines.shared_models import SharedModels
from pipelines.turns import PAUSE_STABILITY, SpeculativeTurnStopStrategy


async def _strategy(text_fallback_s: float = 0.0, at_pause: bool = False,
                    ) -> tuple[SpeculativeTurnStopStrategy, list[tuple[str, Any]]]:
    analyzer = SharedModels(smart_turn=True).turn_analyzer()
    assert analyzer is not None
    strategy = SpeculativeTurnStopStrategy(turn_analyzer=analyzer, text_fallback_s=text_fallback_s, at_pause=at_pause)
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


def _interim(text: str, stability: float) -> InterimTranscriptionFrame:
    """As Pipecat's Riva client builds it, with the server's result (a pause transcript has PAUSE_STABILITY)."""
    return InterimTranscriptionFrame(text, "caller", "2026-01-01T00:00:00Z",
                                     result=rasr.StreamingRecognitionResult(is_final=False, stability=stability))


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
    first = strategy._speculation
    await strategy.process_frame(VADUserStartedSpeakingFrame())  # the caller goes on
    await strategy.process_frame(_final("to book a table."))  # the ASR's final while VAD still hears speech
    assert events == [("inference", "I would like"), ("cancelled", None)]
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    assert events[2:] == [("inference", "I would like to book a table.")]
    second = strategy._speculation
    await strategy.trigger_user_turn_stopped()
    assert events[-1] == ("stopped", True)
    # The LLM drops a guess marked withdrawn if it arrives late (pipelines/speculative_replies.py).
    assert first is not None and first.withdrawn and second is not None and not second.withdrawn


async def test_a_turn_that_ends_on_other_words_runs_a_fresh_reply() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_final("Hello there"))
    guess = strategy._speculation
    assert guess is not None
    guess.text = "something else"  # as if the ASR had revised it
    await strategy.trigger_user_turn_stopped()
    assert events[1:] == [("cancelled", None), ("inference", None), ("stopped", False)]
    assert guess.withdrawn  # marked before its withdrawal went out, which may overtake it on the way to the LLM


async def test_a_guess_the_llm_withdrew_for_a_tool_call_is_answered_again_at_the_turn_end() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_final("Goodbye."))
    await strategy.process_frame(EagerEndOfTurnCancelFrame())  # the LLM service's own withdrawal
    await strategy.trigger_user_turn_stopped()
    assert events == [("inference", "Goodbye."), ("inference", None), ("stopped", False)]


async def test_a_pause_transcript_starts_the_reply_at_the_vad_stop_and_the_same_final_keeps_it() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    await strategy.process_frame(_interim("What time do you close today?", PAUSE_STABILITY))
    assert events == []  # the VAD still hears speech: the pause may be mid-sentence
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    assert events == [("inference", "What time do you close today?")]  # before the final
    await strategy.process_frame(_final("What time do you close today?"))
    assert events == [("inference", "What time do you close today?")]  # same words: the guess stands
    await strategy.trigger_user_turn_stopped()
    assert events[1:] == [("stopped", True)]
    assert strategy.speculation_hits == 1


async def test_a_reply_started_on_a_pause_transcript_is_discarded_when_the_final_differs() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    await strategy.process_frame(_interim("I would like", PAUSE_STABILITY))
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("I would like to cancel my booking."))  # the caller went on after all
    assert events == [("inference", "I would like"), ("cancelled", None),
                      ("inference", "I would like to cancel my booking.")]
    await strategy.trigger_user_turn_stopped()
    assert events[-1] == ("stopped", True)  # released once, on the final's words; the first guess never was


async def test_the_caller_going_on_after_a_pause_transcript_withdraws_the_reply() -> None:
    strategy, events = await _strategy()
    await strategy.process_frame(_interim("I would like", PAUSE_STABILITY))
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    assert events == [("inference", "I would like"), ("cancelled", None)]
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    assert events[2:] == []  # the old pause transcript is outdated: nothing to guess on until new words come


async def test_at_pause_the_pause_transcript_starts_the_reply_before_the_vad_hears_the_stop() -> None:
    strategy, events = await _strategy(at_pause=True)
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    await strategy.process_frame(_interim("What time do you close today?", PAUSE_STABILITY))
    assert events == [("inference", "What time do you close today?")]  # the ASR server heard the pause
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("What time do you close today?"))
    assert events == [("inference", "What time do you close today?")]  # the same words: the guess stands
    await strategy.trigger_user_turn_stopped()
    assert events[1:] == [("stopped", True)]


async def test_at_pause_a_caller_who_goes_on_gets_the_guess_replaced_by_their_next_pause() -> None:
    strategy, events = await _strategy(at_pause=True)
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    await strategy.process_frame(_interim("I would like", PAUSE_STABILITY))
    first = strategy._speculation
    await strategy.process_frame(_interim("I would like to cancel my booking.", PAUSE_STABILITY))
    assert events == [("inference", "I would like"), ("cancelled", None),
                      ("inference", "I would like to cancel my booking.")]
    assert first is not None and first.withdrawn
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("I would like to cancel my booking."))
    await strategy.trigger_user_turn_stopped()
    assert events[3:] == [("stopped", True)]


async def test_a_timed_interim_while_the_caller_speaks_starts_nothing() -> None:
    strategy, events = await _strategy(at_pause=True)
    await strategy.process_frame(VADUserStartedSpeakingFrame())
    await strategy.process_frame(_interim("I would", 0.5))
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    assert events == []  # only a pause transcript is kept for the VAD stop


async def test_the_text_fallback_still_ends_a_finished_question_and_releases_the_held_reply() -> None:
    strategy, events = await _strategy(text_fallback_s=0.3)  # smart-turn gets no audio: it calls the turn unfinished
    await strategy.process_frame(VADUserStoppedSpeakingFrame())
    await strategy.process_frame(_final("What time do you close?"))
    await asyncio.sleep(0.8)
    assert events == [("inference", "What time do you close?"), ("stopped", True)]
