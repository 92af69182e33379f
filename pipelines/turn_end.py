"""A shorter wait when smart-turn calls a finished caller unfinished: the text end-of-turn signal.

smart-turn v3 judges the end of a turn from the last seconds of audio. On caller voices it was not tuned on (and on
8 kHz phone audio) it calls 0-25 % of finished questions "incomplete" (bench/turn_end_bench.py), and such a turn
then ends only on its silence fallback (2 s), which is where 2.5 s voice-to-voice turns come from. Ending the turn
at once whenever the final transcript reads as a finished sentence would remove those waits but talk over most
callers who pause mid-sentence (Whisper punctuates fragments too). The middle way measured here: smart-turn's
"incomplete" still holds the turn, but when the final transcript reads complete the fallback is shortened from
2 s to `text_fallback_s` after the end of speech. A caller who pauses mid-sentence for longer than that, on a
fragment that reads complete, is cut off; the benchmark counts those next to the latency won.

The transcript cannot help when the ASR mishears a voice it was not tuned on ("You accept credit card", no
punctuation). smart-turn's own probability can: its wrong "incomplete" on a finished question is mostly a near miss
(probability of complete 0.2-0.5), while the fragments it does hold are mostly sure (below 0.1). An "incomplete"
with at least `unsure_probability` is treated like a transcript that reads complete: the same shortened wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipecat.frames.frames import TranscriptionFrame, VADUserStoppedSpeakingFrame
from pipecat.metrics.metrics import MetricsData, TurnMetricsData
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

# Words that leave an English sentence hanging when a caller pauses after them.
HANGING_WORDS = frozenset(
    "a an the and or but so because if that to for of with at in on about from by my your our their his her "
    "its is are was were am be um uh er like then when which who i we".split())


def transcript_reads_complete(text: str) -> bool:
    """A final transcript that ends a sentence (. ? !) on a word that does not leave it hanging (Whisper
    punctuates what it hears)."""
    stripped = text.strip()
    if not stripped or stripped[-1] not in ".?!":
        return False
    words = [w for w in (w.strip(".,?!;:'\"").lower() for w in stripped.split()) if w]
    return bool(words) and words[-1] not in HANGING_WORDS


class TextAwareTurnStopStrategy(TurnAnalyzerUserTurnStopStrategy):
    """smart-turn, whose "incomplete" waits only `text_fallback_s` after the end of speech (instead of its 2 s
    silence fallback) when the final transcript reads as a finished sentence, or when smart-turn was unsure (its
    probability of complete at least `unsure_probability`; 0: never); `text_fallback_s` 0: smart-turn alone."""

    def __init__(self, *, text_fallback_s: float, unsure_probability: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text_fallback_s = text_fallback_s
        self._unsure_probability = unsure_probability
        self._unsure = False
        self._speech_ended_at = 0.0
        self._short_task: asyncio.Task[None] | None = None

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._speech_ended_at = frame.timestamp - frame.stop_secs
        await super()._handle_vad_user_stopped_speaking(frame)
        await self._arm_short_fallback()

    async def _handle_transcription(self, frame: TranscriptionFrame) -> None:
        await super()._handle_transcription(frame)
        await self._arm_short_fallback()

    async def _handle_prediction_result(self, result: MetricsData | None) -> None:
        self._unsure = (isinstance(result, TurnMetricsData) and not result.is_complete
                        and 0 < self._unsure_probability <= result.probability)
        await super()._handle_prediction_result(result)

    async def _arm_short_fallback(self) -> None:
        if (self._text_fallback_s <= 0 or self._turn_complete or not self._vad_stopped or self._short_task is not None
                or not (self._unsure or transcript_reads_complete(self._text))):
            return
        delay = max(0.0, self._speech_ended_at + self._text_fallback_s - time.time())
        self._short_task = self.task_manager.create_task(self._short_fallback(delay), f"{self}::_short_fallback")

    async def _short_fallback(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        finally:
            self._short_task = None
        if self._vad_stopped and not self._turn_complete:
            self._turn_complete = True
            await self._maybe_trigger_user_turn_stopped()

    async def _discard_pending_end_of_turn(self) -> None:
        await super()._discard_pending_end_of_turn()
        self._unsure = False
        await self._cancel_short_fallback()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._cancel_short_fallback()

    async def _cancel_short_fallback(self) -> None:
        if self._short_task is not None:
            await self.task_manager.cancel_task(self._short_task)
            self._short_task = None
