"""Cuts a stream of audio into utterances with Silero VAD.

Besides "speech started" and "utterance ended" it reports a *pause*: a short silence inside an utterance. The stream
starts decoding at the pause, so by the time the silence is long enough to end the utterance the transcript is
(nearly) ready; if the caller speaks again the pause's decode only serves as an interim result.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from speech.asr.vad import SileroModel, SileroStream


@dataclass(frozen=True)
class EndpointerParams:
    threshold: float = 0.5
    # Hysteresis: once speaking, a window only counts as silence below this probability.
    neg_threshold: float = 0.35
    min_speech_ms: int = 64
    stop_ms: int = 300
    pause_ms: int = 96
    preroll_ms: int = 192
    max_utterance_s: float = 25.0


@dataclass(frozen=True)
class SpeechStarted:
    start_sample: int


@dataclass(frozen=True)
class Pause:
    """Silence of `pause_ms` inside an utterance: the audio so far, ready for a speculative decode."""

    audio: np.ndarray
    start_sample: int
    speech_end_sample: int


@dataclass(frozen=True)
class SpeechResumed:
    pass


@dataclass(frozen=True)
class UtteranceEnded:
    audio: np.ndarray
    start_sample: int
    speech_end_sample: int
    # True when the pause's audio already holds all the speech (nothing but silence came after it).
    covered_by_pause: bool
    forced: bool = False


Event = SpeechStarted | Pause | SpeechResumed | UtteranceEnded


class Endpointer:
    def __init__(self, vad: SileroModel, sample_rate: int, params: EndpointerParams) -> None:
        self.sample_rate = sample_rate
        self.params = params
        self.vad: SileroStream = vad.stream(sample_rate)
        self.window = self.vad.window
        ms_per_window = 1000.0 * self.window / sample_rate
        self._min_speech_windows = max(1, round(params.min_speech_ms / ms_per_window))
        self._stop_windows = max(1, round(params.stop_ms / ms_per_window))
        self._pause_windows = max(1, min(self._stop_windows, round(params.pause_ms / ms_per_window)))
        self._max_windows = int(params.max_utterance_s * sample_rate / self.window)
        preroll_windows = max(self._min_speech_windows, round(params.preroll_ms / ms_per_window))
        self._preroll: deque[np.ndarray] = deque(maxlen=preroll_windows + self._min_speech_windows)
        self._pending = np.zeros(0, dtype=np.float32)
        self.samples_seen = 0  # window-aligned samples scored so far
        self.in_speech = False
        self._speech_run = 0
        self._silence_run = 0
        self._utterance: list[np.ndarray] = []
        self._utt_start = 0
        self._speech_end = 0
        self._paused = False

    @property
    def speech_end_sample(self) -> int:
        return self._speech_end

    def current_audio(self) -> np.ndarray:
        """The open utterance's audio so far (for an interim decode)."""
        if not self.in_speech or not self._utterance:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._utterance)

    def feed(self, samples: np.ndarray) -> list[Event]:
        """Score whole windows of float32 samples at `sample_rate`; keeps the remainder for the next call."""
        if self._pending.size:
            samples = np.concatenate((self._pending, samples))
        n_windows = samples.size // self.window
        events: list[Event] = []
        for i in range(n_windows):
            window = samples[i * self.window : (i + 1) * self.window]
            events.extend(self._step(window))
        self._pending = samples[n_windows * self.window :].copy()
        return events

    def flush(self) -> list[Event]:
        """End of audio: close an open utterance."""
        if not self.in_speech:
            return []
        if self._pending.size:
            self._utterance.append(self._pending)
            self._pending = np.zeros(0, dtype=np.float32)
        return [self._end(forced=True)]

    def _step(self, window: np.ndarray) -> list[Event]:
        prob = self.vad.score(window, self.in_speech)
        self.samples_seen += self.window
        if not self.in_speech:
            self._preroll.append(window)
            self._speech_run = self._speech_run + 1 if prob >= self.params.threshold else 0
            if self._speech_run < self._min_speech_windows:
                return []
            self.in_speech = True
            self._utterance = list(self._preroll)
            self._preroll.clear()
            self._utt_start = self.samples_seen - sum(w.size for w in self._utterance)
            self._speech_end = self.samples_seen
            self._silence_run = 0
            self._paused = False
            return [SpeechStarted(self._utt_start)]

        self._utterance.append(window)
        events: list[Event] = []
        if prob >= self.params.neg_threshold:
            if self._paused:
                events.append(SpeechResumed())
            self._paused = False
            self._silence_run = 0
            self._speech_end = self.samples_seen
        else:
            self._silence_run += 1
            if self._silence_run >= self._stop_windows:
                events.append(self._end(forced=False))
                return events
            if self._silence_run >= self._pause_windows and not self._paused:
                self._paused = True
                events.append(Pause(np.concatenate(self._utterance), self._utt_start, self._speech_end))
        if len(self._utterance) >= self._max_windows:
            events.append(self._end(forced=True))
        return events

    def _end(self, forced: bool) -> UtteranceEnded:
        audio = np.concatenate(self._utterance) if self._utterance else np.zeros(0, dtype=np.float32)
        event = UtteranceEnded(audio, self._utt_start, self._speech_end, covered_by_pause=self._paused, forced=forced)
        self.in_speech = False
        self._utterance = []
        self._speech_run = 0
        self._silence_run = 0
        self._paused = False
        return event
