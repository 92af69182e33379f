"""In-call voicemail detection for outbound calls, on `pipecat.extensions.voicemail`.

The extension's VoicemailDetector (after STT) asks a classifier about what the callee says and its TTSGate (after
TTS) holds the agent's speech until the verdict. Around it:

- `GreetingClassifier`: the classifier when only the embedded model is there (SmolLM2-135M cannot answer the
  extension's JSON question reliably): the cue phrases of voicemail greetings and carrier messages. A call-screening
  prompt ("please say your name...") expects the caller to speak, so it counts as a conversation.
- `BeepDetector`: a steady single tone in the callee's audio (the record beep). A beep decides "voicemail" if the
  words have not decided yet, and the message starts at it; a greeting with no beep gets the message after
  `no_beep_wait_s` of quiet once the words decided (the extension's own delay): a defined behaviour either way.
- The message is said in the agent's voice, then the call hangs up (end reason `voicemail`).

The carrier's AMD result (campaign callbacks, backend/campaigns) still redirects a machine the carrier detects;
this runs inside the call for the ones it does not.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pipecat.classifiers.base_classifier import (
    BaseClassifier,
    ChoiceQuestion,
    ChoiceResult,
    ClassifierImage,
    ClassifierQuestion,
    ClassifierResult,
)
from pipecat.extensions.voicemail.voicemail_detector import VoicemailDetector
from pipecat.frames.frames import Frame, InputAudioRawFrame, TTSSpeakFrame
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from core.agent_config import VoicemailConfig
from pipelines.frames import PlaybackMarkFrame

VOICEMAIL_CUES = re.compile(
    r"\b(you'?ve reached|you have reached|leave (me |us )?(a |your )?(message|name|number)|after the (tone|beep)|"
    r"not available|unavailable|can'?t (come to|take|get to) the phone|mailbox|voice ?mail|record your message|"
    r"at the tone|not in service|please try again later|no one is available|away from)\b", re.IGNORECASE)


def looks_like_voicemail(transcript: str) -> bool:
    return bool(VOICEMAIL_CUES.search(transcript))


class GreetingClassifier(BaseClassifier):
    """Answers the voicemail detector's choice question from cue phrases (no model needed)."""

    async def _ask(self, state: str | dict[str, Any] | list[Any], questions: Mapping[str, ClassifierQuestion],
                   images: Sequence[ClassifierImage] = ()) -> tuple[dict[str, ClassifierResult], LLMTokenUsage | None]:
        voicemail = looks_like_voicemail(str(state))
        results: dict[str, ClassifierResult] = {}
        for name, question in questions.items():
            assert isinstance(question, ChoiceQuestion)
            choice = "voicemail" if voicemail else "conversation"
            probabilities = {option: (0.9 if option == choice else 0.1) for option in question.options}
            results[name] = ChoiceResult(choice=choice, probabilities=probabilities, confidence=0.9)
        return results, None


class BeepDetector(FrameProcessor):
    """Calls `on_beep` once per steady tone (≥ min_s, 400-2500 Hz, most of the energy in one frequency)."""

    def __init__(self, on_beep: Callable[[], Awaitable[None]], *, min_s: float = 0.15) -> None:
        super().__init__()
        self._on_beep = on_beep
        self._min_s = min_s
        self._buffer = np.zeros(0, dtype=np.float64)
        self._run_s = 0.0
        self._fired = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and not self._fired:
            await self._listen(frame.audio, frame.sample_rate)
        await self.push_frame(frame, direction)

    async def _listen(self, pcm: bytes, rate: int) -> None:
        self._buffer = np.concatenate([self._buffer, np.frombuffer(pcm, dtype="<i2").astype(np.float64)])
        window = rate // 25  # 40 ms
        while len(self._buffer) >= window:
            chunk, self._buffer = self._buffer[:window], self._buffer[window:]
            self._run_s = self._run_s + window / rate if is_tone(chunk, rate) else 0.0
            if self._run_s >= self._min_s:
                self._fired = True
                await self._on_beep()
                return


def is_tone(chunk: np.ndarray, rate: int) -> bool:
    if float(np.sqrt(np.mean(chunk ** 2))) < 500:  # quiet
        return False
    spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)))) ** 2
    freqs = np.fft.rfftfreq(len(chunk), 1 / rate)
    peak = int(np.argmax(spectrum))
    if not 400 <= freqs[peak] <= 2500:
        return False
    near = spectrum[max(0, peak - 2):peak + 3].sum()
    return bool(near / spectrum.sum() > 0.6)


class _Detector(VoicemailDetector):
    """After a voicemail verdict the extension lets nothing reach the conversation; the message we leave (queued
    at the pipeline's start like every spoken line, with its playback mark) must still get through."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if (self._decision == "voicemail" and direction is FrameDirection.DOWNSTREAM
                and isinstance(frame, (TTSSpeakFrame, PlaybackMarkFrame))):
            await FrameProcessor.process_frame(self, frame, direction)
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)


class InCallVoicemail:
    """The detector, its gate and the beep detector for one outbound call; `leave` runs once."""

    def __init__(self, config: VoicemailConfig, message: str,
                 leave: Callable[[str], Awaitable[None]], classifier: BaseClassifier | None = None) -> None:
        self.detector = _Detector(classifier=classifier or GreetingClassifier(),
                                          voicemail_response_delay=config.no_beep_wait_s,
                                          decision_timeout=config.decision_silence_s)
        self.beeps = BeepDetector(self._beep)
        self.started = time.monotonic()
        self.verdict: str | None = None
        self.decided_after_s: float | None = None
        self.beep_heard = False
        self._message = message
        self._leave = leave
        self._left = False
        self._task: asyncio.Future[None] | None = None

        @self.detector.event_handler("on_conversation_detected")
        async def _person(_detector: Any) -> None:
            self._decided("conversation")

        @self.detector.event_handler("on_voicemail_detected")
        async def _voicemail(_detector: Any) -> None:
            self._decided("voicemail")
            await self._leave_once()  # no beep (or it came before the verdict): after the quiet

    def _decided(self, verdict: str) -> None:
        if self.verdict is None:
            self.verdict, self.decided_after_s = verdict, round(time.monotonic() - self.started, 2)

    async def _beep(self) -> None:
        """A record beep is the machine's own answer: it decides (if the words have not) and starts the message.
        The extension keeps its verdict private; `_decide` is what its silence timer calls."""
        self.beep_heard = True
        if self.detector._decision is None:
            await self.detector._decide("voicemail")
        if self.detector._decision == "voicemail":
            self._decided("voicemail")
            await self._leave_once()

    async def _leave_once(self) -> None:
        if not self._left:
            self._left = True
            self._task = asyncio.ensure_future(self._leave(self._message))
