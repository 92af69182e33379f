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

- The carrier's AMD verdict (Twilio AnsweredBy, Vobiz Machine=true/false; the voice server's /{carrier}/amd
  route) decides too, whichever of the three comes first: a machine verdict decides voicemail (and one that says
  the greeting is over, Twilio's machine_end_*, starts the message at once), `human` decides a conversation.
- Early verdict: the cue phrases are checked on the ASR's interim transcripts as well, so a greeting that says
  "you've reached" or "leave a message" is decided voicemail while it is still playing, instead of after it ends
  and the quiet that follows (the message itself still waits for the beep or the quiet).
- Short answer: a person picks up with a word or three and waits ("Hello?"); a greeting goes on. A transcript of at
  most `SHORT_ANSWER_WORDS` words with no cue decides "conversation" after `quick_person_silence_s` of quiet
  (0.5 s) instead of the full `decision_silence_s` (1.0 s); an interim transcript (the callee still talking)
  starts the quiet over. A call-screening prompt ("state your name after the tone") counts as a conversation.

Campaign calls keep the campaign's own AMD policy (backend/campaigns/callbacks.py); single API calls of an agent
with in-call detection ask the carrier for AMD with this voice server's route as the callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pipecat.classifiers.base_classifier import (
    BaseClassifier,
    ChoiceQuestion,
    ChoiceResult,
    ClassifierImage,
    ClassifierQuestion,
    ClassifierResult,
)
from pipecat.extensions.voicemail.voicemail_detector import TTSGate, VoicemailDetector
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from core.agent_config import VoicemailConfig
from pipelines.frames import PlaybackMarkFrame
from telephony.base import MachineDetection

VOICEMAIL_CUES = re.compile(
    r"\b(you'?ve reached|you have reached|you reached|(reached|this is) the (voice ?mail|mailbox)|"
    r"leave (me |us )?(a |your )?(message|name|number|voice ?mail)|record your message|"
    r"after the (tone|beep)|at the (tone|beep)|"
    r"not available|unavailable|can'?t (come to|take|get to|answer) (the phone|your call|the call|my phone)|"
    r"mailbox|voice ?mail|not in service|please try again later|no one is available|away from|"
    r"(i'?ll|i will|we'?ll|we will) (call|get back to) you|currently closed|out of the office)\b", re.IGNORECASE)
# A call-screening prompt asks the caller to speak ("state your name after the tone"): a conversation, even with
# a voicemail-like phrase in it.
SCREENING_CUES = re.compile(r"\b((say|state) your name|screening service|why you('?re| are) calling)\b",
                            re.IGNORECASE)
# A person answers with a word or three ("Hello?", "Yeah, who's this?") and waits; a greeting goes on.
SHORT_ANSWER_WORDS = 3


def looks_like_voicemail(transcript: str) -> bool:
    return bool(VOICEMAIL_CUES.search(transcript)) and not SCREENING_CUES.search(transcript)


def is_short_answer(transcript: str) -> bool:
    """What a person says on picking up: a few words and no voicemail cue."""
    words = re.findall(r"[\w']+", transcript)
    return 0 < len(words) <= SHORT_ANSWER_WORDS and not looks_like_voicemail(transcript)


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
        self.hearing = asyncio.Event()  # the callee's audio flows: the pipeline runs
        self._on_beep = on_beep
        self._min_s = min_s
        self._buffer = np.zeros(0, dtype=np.float64)
        self._run_s = 0.0
        self._fired = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and not self._fired:
            self.hearing.set()
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


_TTS_FRAMES = (TTSStartedFrame, TTSStoppedFrame, TTSTextFrame, TTSAudioRawFrame)


class _Gate(TTSGate):
    """The extension's gate clears what it holds at a voicemail verdict and then opens; a verdict that comes before
    the greeting is synthesised (an early cue, a beep, the carrier's AMD on a slow machine) would let the greeting
    through. After a voicemail verdict this gate passes speech only once the message is being left, and never
    the speech of a TTS context it already dropped."""

    def __init__(self, gate: TTSGate) -> None:
        super().__init__(gate._conversation_notifier, gate._voicemail_notifier)
        self.voicemail = False
        self.leaving = False
        self._dropped: set[str | None] = set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if self.voicemail and isinstance(frame, _TTS_FRAMES):
            context_id = getattr(frame, "context_id", None)
            if not self.leaving or (context_id is not None and context_id in self._dropped):
                await FrameProcessor.process_frame(self, frame, direction)
                self._dropped.add(context_id)
                return
        await super().process_frame(frame, direction)


class _Detector(VoicemailDetector):
    """After a voicemail verdict the extension lets nothing reach the conversation; the message we leave (queued
    at the pipeline's start like every spoken line, with its playback mark) must still get through. Interim
    transcripts with a voicemail cue decide at once (`on_early_voicemail`)."""

    def __init__(self, *, on_early_voicemail: Callable[[], Awaitable[None]], quick_person_s: float,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_early_voicemail = on_early_voicemail
        self._quick_person_s = quick_person_s
        self.short_answer = False  # decided "conversation" by the short-answer rule
        self._tts_gate = self.held = _Gate(self._tts_gate)

    async def _decide_after_silence(self) -> None:
        """The extension's timer (its `decision_timeout` of quiet, then the latest classification decides), with
        a shorter first step: a short answer with no cue ("Hello?") decides "conversation" after
        `quick_person_s` of quiet; anything else waits out the full quiet as before."""
        quick = min(self._quick_person_s, self._decision_timeout)
        await asyncio.sleep(quick)
        await self._segments.join()
        if self._decision is None and is_short_answer(" ".join(self._transcript)):
            self.short_answer = True
            await self._decide("conversation")
            return
        await asyncio.sleep(self._decision_timeout - quick)
        await self._segments.join()
        if self._decision is None:
            result = self._last_result
            await self._decide("voicemail" if result is not None and result.choice == "voicemail" else "conversation")

    async def _decide(self, label: Literal["voicemail", "conversation"]) -> None:
        if label == "voicemail":
            self.held.voicemail = True
        await super()._decide(label)

    @property
    def decision(self) -> str | None:
        return self._decision

    async def decide(self, verdict: Literal["voicemail", "conversation"]) -> None:
        """A verdict from outside the words (a beep, the carrier's AMD): the extension keeps its verdict private;
        `_decide` is what its own silence timer calls."""
        if self._decision is None:
            await self._decide(verdict)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterimTranscriptionFrame) and self._decision is None and frame.text.strip():
            if looks_like_voicemail(frame.text):
                await self._on_early_voicemail()
            elif self._decision_task is not None:
                await self._restart_decision_timer()  # the callee is still talking: the quiet counts from now
        if (self._decision == "voicemail" and direction is FrameDirection.DOWNSTREAM
                and isinstance(frame, (TTSSpeakFrame, PlaybackMarkFrame))):
            await FrameProcessor.process_frame(self, frame, direction)
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)


class InCallVoicemail:
    """The detector, its gate and the beep detector for one outbound call; `leave` runs once."""

    def __init__(self, config: VoicemailConfig, message: str,
                 leave: Callable[[str, str], Awaitable[None]], classifier: BaseClassifier | None = None) -> None:
        self.detector = _Detector(classifier=classifier or GreetingClassifier(),
                                  voicemail_response_delay=config.no_beep_wait_s,
                                  decision_timeout=config.decision_silence_s,
                                  quick_person_s=config.quick_person_silence_s,
                                  on_early_voicemail=self._early_words)
        self.beeps = BeepDetector(self._beep)
        self.started = time.monotonic()
        self.verdict: str | None = None
        self.decided_by = ""  # words | short answer | early words | beep | carrier <AnsweredBy>
        self.decided_after_s: float | None = None
        self.on_decided: Callable[[], None] | None = None
        self._message = message
        self._leave = leave
        self._left = False
        self._task: asyncio.Future[None] | None = None

        @self.detector.event_handler("on_conversation_detected")
        async def _person(_detector: Any) -> None:
            self._decided("conversation", "short answer" if self.detector.short_answer else "words")

        @self.detector.event_handler("on_voicemail_detected")
        async def _voicemail(_detector: Any) -> None:
            self._decided("voicemail", "words")
            await self._leave_once()  # no beep (or it came before the verdict): after the quiet

    def _decided(self, verdict: str, by: str) -> None:
        if self.verdict is None:
            self.verdict, self.decided_by = verdict, by
            self.decided_after_s = round(time.monotonic() - self.started, 2)
            if self.on_decided is not None:
                self.on_decided()

    async def _early_words(self) -> None:
        self._decided("voicemail", "early words")
        await self.detector.decide("voicemail")

    async def _beep(self) -> None:
        """A record beep is the machine's own answer: it decides (if nothing has) and starts the message."""
        await self.detector.decide("voicemail")
        if self.detector.decision == "voicemail":
            self._decided("voicemail", "beep")
            await self._leave_once()

    async def carrier_verdict(self, detection: MachineDetection, message: str | None = None) -> None:
        """The carrier's AMD callback. It decides only if nothing has yet; `unknown` decides nothing. A verdict
        that comes before the callee's audio flows through the pipeline waits for it (a verdict acted on before the
        detector and its gate run would be lost). `message`: what to leave instead of the agent's own (a campaign's
        voicemail message, relayed by the backend), if it has not started yet."""
        if message and not self._left:
            self._message = message
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.beeps.hearing.wait(), timeout=10.0)
        if detection.machine:
            self._decided("voicemail", f"carrier {detection.answered_by}")
            await self.detector.decide("voicemail")
            if detection.message_ended and self.detector.decision == "voicemail":
                await self._leave_once()  # the carrier waited for the greeting's end: no beep or quiet to wait for
        elif detection.answered_by == "human":
            self._decided("conversation", "carrier human")
            await self.detector.decide("conversation")

    async def _leave_once(self) -> None:
        if not self._left:
            self._left = True
            self.detector.held.leaving = True
            detail = f"in-call voicemail detection ({self.decided_by}, after {self.decided_after_s} s)"
            self._task = asyncio.ensure_future(self._leave(self._message, detail))
