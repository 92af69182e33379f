"""TTS engines. `piper` imports only onnxruntime; `xtts` imports torch and coqui-tts lazily, when it is enabled."""

from __future__ import annotations

from speech.tts.config import TtsSettings
from speech.tts.engines.base import EngineUnavailable, TtsEngine, VoiceError, VoiceInfo

__all__ = ["EngineUnavailable", "TtsEngine", "VoiceError", "VoiceInfo", "load_engine"]


def load_engine(name: str, settings: TtsSettings) -> TtsEngine:
    if name == "piper":
        from speech.tts.engines.piper_engine import PiperEngine

        return PiperEngine(settings.piper_models(), threads=settings.tts_piper_threads)
    if name == "xtts":
        from speech.tts.engines.xtts_engine import XttsEngine

        return XttsEngine.load(settings)
    raise EngineUnavailable(f"unknown TTS engine {name!r}")
