"""When a caller's speech starts a turn, and when it may cut the agent off (the interruption policy).

- Agent silent: voice activity starts the turn at once (and cancels a reply still being prepared).
- Agent speaking, interruptions enabled:
    - voice activity *pauses* the agent's audio (no carrier flush yet), so the caller is not talked over;
    - once the transcript has `min_words` words the barge-in is accepted: the turn starts with an
      interruption, which flushes the carrier's buffer (clear / clearAudio) and cancels the reply;
    - if the caller stops without saying enough words (a cough, "mm-hm") for `false_interruption_timeout_s`,
      the agent resumes where it paused (false-interruption resume) and the stray words are dropped.
  With `min_words == 0`, voice activity alone is an accepted barge-in.
- Agent speaking, interruptions disabled: the caller's speech is ignored until the agent finishes.

And when it ends: smart-turn (Pipecat's TurnAnalyzerUserTurnStopStrategy, with the text fallback of turn_end.py),
optionally starting the reply before the turn end is confirmed (`SpeculativeTurnStopStrategy`, SPECULATIVE_LLM):
on the ASR server's pause transcript as it arrives (SPECULATE_AT_PAUSE) or once the VAD has heard the caller stop,
then on the final transcript.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EagerEndOfTurnCancelFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import EagerMatchPolicy, NormalizedMatch

from pipelines.frames import PlaybackPauseFrame, PlaybackResumeFrame
from pipelines.speculative_replies import TrackedSpeculation
from pipelines.turn_end import TextAwareTurnStopStrategy

# The stability the platform's ASR server gives a pause transcript (speech/asr/stream.py PAUSE_STABILITY): the
# decode of everything the caller said up to a pause, which the utterance's final repeats if they do not go on.
PAUSE_STABILITY = 1.0


def word_count(text: str) -> int:
    return len([w for w in text.split() if any(ch.isalnum() for ch in w)])


class BargeInStartStrategy(BaseUserTurnStartStrategy):
    def __init__(self, *, interruptions: bool, min_words: int, resume_on_false_interruption: bool,
                 false_interruption_timeout_s: float, max_pause_s: float = 5.0) -> None:
        super().__init__(enable_interruptions=True)
        self._interruptions = interruptions
        self._configured_interruptions = interruptions
        self._min_words = min_words
        self._resume = resume_on_false_interruption
        self._false_timeout = false_interruption_timeout_s
        self._max_pause_s = max_pause_s
        self._bot_speaking = False
        self._pending = False  # a possible barge-in is holding the agent's audio
        self._resume_task: asyncio.Task[None] | None = None
        self.accepted_barge_ins = 0
        self.false_barge_ins = 0

    def disable(self) -> None:
        """While the agent says goodbye or announces a transfer, nothing the caller says cuts it off."""
        self._interruptions = False

    def enable(self) -> None:
        self._interruptions = self._configured_interruptions

    async def handle_user_turn_started(self) -> None:
        await self._cancel_resume_timer()
        self._pending = False

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            return await self._on_voice_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._on_voice_stopped()
        elif isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            return await self._on_words(frame)
        return ProcessFrameResult.CONTINUE

    async def _on_voice_started(self) -> ProcessFrameResult:
        await self._cancel_resume_timer()
        if not self._bot_speaking and not self._pending:
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if not self._interruptions:
            return ProcessFrameResult.CONTINUE
        if self._min_words <= 0:
            self.accepted_barge_ins += 1
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if not self._pending:
            self._pending = True
            await self.broadcast_frame(PlaybackPauseFrame, max_pause_s=self._max_pause_s)
        return ProcessFrameResult.CONTINUE

    async def _on_voice_stopped(self) -> None:
        if self._pending and self._resume_task is None:
            self._resume_task = self.task_manager.create_task(self._false_interruption_timer(),
                                                              f"{self}::false_interruption")

    async def _on_words(self, frame: TranscriptionFrame | InterimTranscriptionFrame) -> ProcessFrameResult:
        words = word_count(frame.text)
        if not self._bot_speaking and not self._pending:
            if words >= 1:
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
            return ProcessFrameResult.CONTINUE
        if not self._interruptions:
            if isinstance(frame, TranscriptionFrame):
                await self.trigger_reset_aggregation()
            return ProcessFrameResult.CONTINUE
        if words >= max(1, self._min_words):
            self.accepted_barge_ins += 1
            await self._cancel_resume_timer()
            self._pending = False
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if isinstance(frame, TranscriptionFrame):
            # Too few words to count as a barge-in: keep them out of the next user message.
            await self.trigger_reset_aggregation()
        return ProcessFrameResult.CONTINUE

    async def _false_interruption_timer(self) -> None:
        try:
            await asyncio.sleep(self._false_timeout)
        except asyncio.CancelledError:
            return
        self._resume_task = None
        if self._pending:
            self._pending = False
            self.false_barge_ins += 1
            await self.trigger_reset_aggregation()
            if self._resume:
                await self.broadcast_frame(PlaybackResumeFrame)
            else:
                # No resume: treat the noise as the end of what the agent was saying.
                await self.trigger_user_turn_started()

    async def _cancel_resume_timer(self) -> None:
        if self._resume_task is not None:
            task, self._resume_task = self._resume_task, None
            await self.task_manager.cancel_task(task)

    async def cleanup(self) -> None:
        await self._cancel_resume_timer()
        await super().cleanup()


def is_pause_transcript(frame: InterimTranscriptionFrame) -> bool:
    return float(getattr(frame.result, "stability", 0.0) or 0.0) >= PAUSE_STABILITY


class SpeculativeTurnStopStrategy(TextAwareTurnStopStrategy):
    """Smart-turn decides when the caller's turn ends; meanwhile the reply is already being generated.

    As soon as the VAD has heard the caller stop and there is text for it — the ASR's pause transcript (its decode
    at the caller's first short pause, sent before its endpointing silence has passed and the final), the final
    transcript, or an interim — while the turn is still open — smart-turn still running, or judging the sentence unfinished — the reply is generated on
    that text through Pipecat's speculative inference: the LLM's output is held by its speculation gate. When the
    turn ends with the same text (normalised: case and punctuation ignored) the held reply is released at once;
    otherwise it is withdrawn (the LLM stream is cancelled) and the reply is generated on the committed text.
    The caller speaking again withdraws it too. The context only ever records the committed text.

    With `at_pause` (SPECULATE_AT_PAUSE, off by default) the pause transcript starts the reply as it arrives, even
    while the VAD still hears speech: the ASR server sends it only if the caller is still silent when its decode of
    the pause is done, which is before Silero's stop (300-370 ms after the last word here). A caller who goes on
    gets the guess replaced by their next pause's, or at the VAD stop, or withdrawn at the turn end; no agent speech
    comes before the turn end either way. On 2 shared cores the earlier start took CPU from the ASR's final decode
    and smart-turn, and the turn came no sooner (BENCHMARKS.md "Voice-to-voice: the reply started as the pause
    transcript arrives").
    """

    def __init__(self, *, match_policy: EagerMatchPolicy | None = None, text_fallback_s: float = 0.0,
                 unsure_probability: float = 0.0, at_pause: bool = False, **kwargs: Any) -> None:
        super().__init__(text_fallback_s=text_fallback_s, unsure_probability=unsure_probability, **kwargs)
        self._match_policy = match_policy or NormalizedMatch()
        self._at_pause = at_pause
        self._finals: list[str] = []
        self._paused = ""  # the pause transcript of the utterance after the last final, heard while VAD heard speech
        self._speculation: TrackedSpeculation | None = None
        self.speculations = 0
        self.speculation_hits = 0

    @property
    def _committed(self) -> str:
        return " ".join(t.strip() for t in self._finals if t.strip())

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._paused = ""
            await self._withdraw()  # the caller goes on: whatever was guessed is incomplete
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            # Withdrawn downstream (Pipecat's LLM service does so for a tool call; ours holds the call until the turn
            # is confirmed instead, speculative_replies.py): the turn end must run a reply.
            self._speculation = None
        elif isinstance(frame, TranscriptionFrame):
            self._finals.append(frame.text)
            self._paused = ""  # the final covers it
        elif isinstance(frame, InterimTranscriptionFrame) and is_pause_transcript(frame):
            self._paused = frame.text
        result = await super().process_frame(frame)  # may end the turn (trigger_user_turn_stopped below)
        if self._vad_user_speaking:
            if self._at_pause and isinstance(frame, InterimTranscriptionFrame) and is_pause_transcript(frame):
                await self._speculate(f"{self._committed} {self._paused}".strip())
            return result  # else still talking (a pause too short for the VAD): a guess now would likely be withdrawn
        if isinstance(frame, (TranscriptionFrame, VADUserStoppedSpeakingFrame)) and (self._finals or self._paused):
            await self._speculate(f"{self._committed} {self._paused}".strip())
        elif isinstance(frame, InterimTranscriptionFrame) and self._vad_stopped:
            await self._speculate(f"{self._committed} {frame.text}".strip())
        return result

    async def trigger_user_turn_stopped(self, *, enable_user_speaking_frames: bool | None = None) -> None:
        committed = self._committed
        speculation, self._speculation = self._speculation, None
        self._finals = []
        self._paused = ""
        if speculation is not None and self._match_policy.matches(speculation.text, committed):
            self.speculation_hits += 1
            await self.trigger_user_turn_finalized(enable_user_speaking_frames=enable_user_speaking_frames,
                                                   confirms_speculation=True)
            return
        if speculation is not None:
            speculation.withdrawn = True  # before the withdrawal, which may overtake the guess (speculative_replies.py)
            await self.trigger_user_turn_speculation_cancelled()
        await super().trigger_user_turn_stopped(enable_user_speaking_frames=enable_user_speaking_frames)

    async def _speculate(self, text: str) -> None:
        if not text:
            return
        current = self._speculation
        if current is not None and self._match_policy.matches(current.text, text):
            return  # already answering this text
        await self._withdraw()
        self._speculation = TrackedSpeculation(text=text)
        self.speculations += 1
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def _withdraw(self) -> None:
        if self._speculation is not None:
            self._speculation.withdrawn = True
            self._speculation = None
            await self.trigger_user_turn_speculation_cancelled()

    async def _reset(self) -> None:
        # A turn boundary the strategy did not end itself (interruption, mute, session end): nothing may stay held.
        await self._withdraw()
        self._finals = []
        self._paused = ""
        await super()._reset()
