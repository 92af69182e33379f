"""Piper (VITS over ONNX Runtime) on the CPU: every configured voice is loaded once and stays loaded."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig

from speech.tts.engines.base import EngineUnavailable, VoiceError, VoiceInfo

log = logging.getLogger("speech.tts.piper")


class PiperEngine:
    name = "piper"
    supports_cloning = False

    def __init__(self, models: list[Path], threads: int = 1) -> None:
        self._voices: dict[str, PiperVoice] = {}
        self._info: dict[str, VoiceInfo] = {}
        for model in models:
            config_path = Path(f"{model}.json")
            if not model.is_file() or not config_path.is_file():
                raise EngineUnavailable(f"Piper voice {model} (and {config_path.name} next to it) not found")
            t0 = time.perf_counter()
            options = onnxruntime.SessionOptions()
            # One thread per synthesis: pieces of several calls run side by side on the worker pool instead.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            voice = PiperVoice(session=session, config=config)
            voice_id = model.name.removesuffix(".onnx")
            self._voices[voice_id] = voice
            self._info[voice_id] = VoiceInfo(
                id=voice_id,
                name=voice_id,
                engine=self.name,
                language=config.espeak_voice,
                native_sample_rate=config.sample_rate,
            )
            list(voice.synthesize("Ready.", SynthesisConfig(normalize_audio=False)))  # warm the session up
            log.info("piper voice loaded", extra={"voice": voice_id, "load_s": round(time.perf_counter() - t0, 3)})
        rates = {info.native_sample_rate for info in self._info.values()}
        self.native_sample_rate = rates.pop() if len(rates) == 1 else 22050

    def voices(self) -> list[VoiceInfo]:
        return list(self._info.values())

    def voice_rate(self, voice_id: str) -> int:
        return self._info[voice_id].native_sample_rate

    def synthesize(
        self, text: str, voice_id: str, speed: float, language: str | None, cancel: threading.Event
    ) -> Iterator[np.ndarray]:
        voice = self._voices.get(voice_id)
        if voice is None:
            raise VoiceError(f"unknown piper voice {voice_id!r}")
        # Unnormalized: per-piece peak normalisation would make the split first sentence jump in loudness.
        config = SynthesisConfig(length_scale=(voice.config.length_scale or 1.0) / speed, normalize_audio=False)
        for chunk in voice.synthesize(text, config):
            if cancel.is_set():
                return
            yield chunk.audio_float_array

    def add_voice(self, voice_id: str, name: str, reference_wav: Path, language: str, owner: str) -> VoiceInfo:
        raise VoiceError("piper voices cannot be cloned from a clip; enable the xtts engine (TTS_ENGINES=piper,xtts)")

    def delete_voice(self, voice_id: str) -> None:
        raise VoiceError(f"{voice_id!r} is a built-in piper voice and cannot be deleted")

    def close(self) -> None:
        self._voices.clear()
