"""A flow's hand-off switches the call's voice: the `TTSVoiceFrame` (pipelines/tts_chain.py) reaches the call's TTS
service in the pipeline, and every request after it asks the TTS server for the new agent's voice, engine and speed,
on the new agent's endpoint chain."""

from __future__ import annotations

from pipecat.tests.utils import run_test

from core.agent_config import EndpointOptions, TTSConfig
from pipelines.resilience import BreakerRegistry
from pipelines.tts_chain import FallbackTTSService, tts_endpoints, voice_frame

PLATFORM = "http://127.0.0.1:9"  # never reached: only the requests' bodies are looked at


def _service(config: TTSConfig) -> FallbackTTSService:
    return FallbackTTSService(endpoints=tts_endpoints(config, PLATFORM), breakers=BreakerRegistry(),
                              policy=None, clips=None, canned_reply="", base_url=PLATFORM,  # type: ignore[arg-type]
                              voice=config.voice, engine=config.engine, speed=config.speed, sample_rate=8000)


async def test_the_voice_frame_switches_voice_engine_speed_and_endpoints() -> None:
    service = _service(TTSConfig(voice="en_US-joe-medium"))
    second = TTSConfig(voice="sales-voice", engine="xtts", speed=1.5,
                       fallbacks=[EndpointOptions(base_url="http://tts-b.example:8200", model="piper")])
    await run_test(service, frames_to_send=[voice_frame(second, PLATFORM)])

    assert [(e.base_url, e.engine, e.voice) for e in service.endpoints] == [
        (PLATFORM, "xtts", "sales-voice"), ("http://tts-b.example:8200", "piper", None)]
    body = service._body("Hi, this is Sam from sales.", service.endpoints[0])
    assert (body["voice"], body["model"], body["speed"]) == ("sales-voice", "xtts", 1.5)
    assert service._settings.voice == "sales-voice"  # Pipecat's own settings follow too


async def test_without_a_voice_frame_the_first_agents_voice_stays() -> None:
    service = _service(TTSConfig(voice="en_US-joe-medium", speed=0.9))
    await run_test(service, frames_to_send=[])
    body = service._body("Hello.", service.endpoints[0])
    assert (body["voice"], body["speed"]) == ("en_US-joe-medium", 0.9)
