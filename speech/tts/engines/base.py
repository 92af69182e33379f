"""The small interface every TTS engine implements; the server streams, resamples and meters around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (no CUDA, no weights, package missing); the message says what to do."""


class VoiceError(ValueError):
    """A voice operation the engine refuses (unknown voice, bad reference clip ...)."""


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    engine: str
    language: str
    native_sample_rate: int
    cloned: bool = False
    owner: str | None = None  # a clone's organisation (speech/tts/app.py keeps it to that organisation)


class TtsEngine(Protocol):
    name: str
    native_sample_rate: int
    supports_cloning: bool

    def voices(self) -> list[VoiceInfo]: ...

    def synthesize(
        self, text: str, voice_id: str, speed: float, language: str | None, cancel: threading.Event
    ) -> Iterator[np.ndarray]:
        """Float32 mono chunks at `native_sample_rate` for one piece of text. Runs in a worker thread; stops early
        when `cancel` is set (the client went away)."""
        ...

    def add_voice(self, voice_id: str, name: str, reference_wav: Path, language: str, owner: str) -> VoiceInfo: ...

    def delete_voice(self, voice_id: str) -> None: ...

    def close(self) -> None: ...

