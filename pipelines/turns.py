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
"""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import BaseUserTurnStartStrategy

from pipelines.frames import PlaybackPauseFrame, PlaybackResumeFrame


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
