"""Voices of the TTS server, as the agent editor lists and samples them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TtsEngine = Literal["piper", "xtts"]


class VoiceOut(BaseModel):
    id: str
    name: str
    engine: TtsEngine
    language: str = ""
    cloned: bool = False


class VoiceSampleRequest(BaseModel):
    voice: str = Field(min_length=1, max_length=128)
    engine: TtsEngine = "piper"
    # The upper bound is BackendSettings.voice_sample_max_chars (checked in the service, so it is configurable).
    text: str = Field(default="Hello! This is how I sound on a phone call.", min_length=1, max_length=4096)
    speed: float = Field(default=1.0, ge=0.5, le=2.0)
