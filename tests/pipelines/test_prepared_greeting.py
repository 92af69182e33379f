"""A greeting prepared at answer time (pipelines/processors.py `PreparedAudio`) that fails only after the call has
begun to play it, before any audio (the platform's TTS answering a 503 once its queue timed out), is said live on
the call's TTS chain; before, the caller heard silence where the greeting should be. Against the real TTS server."""

from __future__ import annotations

import asyncio
import os

import httpx
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame
from pipecat.tests.utils import run_test

from core.agent_config import TTSConfig
from pipelines.processors import PreparedAudio
from pipelines.resilience import BreakerRegistry
from pipelines.speech import SpeechFactory
from pipelines.streaming import StreamingAudio
from pipelines.tts_chain import tts_chain_args

GREETING = "Thank you for calling Test Clinic. How can I help you today?"
RATE = 8000


async def _spoken_seconds(tts_url: str, prepared_audio: StreamingAudio, fail_after_s: float | None) -> float:
    async with httpx.AsyncClient() as http:
        speech = SpeechFactory(riva_server="127.0.0.1:9", tts_url=tts_url, http=http,
                               service_secret=os.environ["SERVICE_TOKEN_SECRET"])
        config = TTSConfig()
        tts = speech.tts(config, sample_rate=RATE, **tts_chain_args(
            config, default_url=tts_url, breakers=BreakerRegistry(), policy=None,  # type: ignore[arg-type]
            clips=None, canned_reply=""))
        prepared = PreparedAudio(tts)
        prepared.add(GREETING, prepared_audio)

        async def fail_later() -> None:
            if fail_after_s is not None:
                await asyncio.sleep(fail_after_s)
                prepared_audio.finish("TTS answered 503: all synthesis workers stayed busy")

        failing = asyncio.create_task(fail_later())
        down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(GREETING)])
        await failing
    audio = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    return len(audio) / 2 / RATE


async def test_a_prepared_greeting_that_fails_before_any_audio_is_said_live(tts_url: str) -> None:
    spoken = await _spoken_seconds(tts_url, StreamingAudio(RATE), fail_after_s=0.3)
    assert spoken > 2.0, f"{spoken:.2f} s of greeting heard"


async def test_a_prepared_greeting_plays_from_memory(tts_url: str) -> None:
    audio = StreamingAudio(RATE)
    audio.append(b"\x10\x00" * RATE)  # one second, known: what the caller hears is the prepared audio
    audio.finish()
    spoken = await _spoken_seconds(tts_url, audio, fail_after_s=None)
    assert abs(spoken - 1.0) < 0.01, spoken
