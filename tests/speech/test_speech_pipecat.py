"""Pipecat's own NvidiaSTTService and our TTS service class, run in Pipecat pipelines against the real servers."""

from __future__ import annotations

from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.task import PipelineParams
from pipecat.tests.utils import SleepFrame, run_test
from speechtest_helpers import WER_BOUND, AsrServer, Utterances, wer

from core.agent_config import STTConfig, TTSConfig
from pipelines.stt import create_stt_service
from pipelines.tts_client import VoiceAgentTTSService, create_tts_service


async def test_pipecat_nvidia_stt_service_transcribes_a_call(asr_server: AsrServer, utterances: Utterances) -> None:
    stt = create_stt_service(STTConfig(language="en-US"), default_server=asr_server.address)
    audio = utterances.pcm16_8k  # μ-law decoded by the transport, as in a phone call
    frames: list = []
    step = 320  # 20 ms at 8 kHz, 16-bit
    for i in range(0, len(audio), step):
        frames.append(InputAudioRawFrame(audio=audio[i : i + step], sample_rate=8000, num_channels=1))
        if i % (step * 25) == 0:
            frames.append(SleepFrame(sleep=0.05))  # about 10x real time: lets the stream thread keep up
    frames.append(SleepFrame(sleep=2.0))  # let the last final arrive before EndFrame closes the stream
    down, _ = await run_test(
        stt, frames_to_send=frames, pipeline_params=PipelineParams(audio_in_sample_rate=8000), start_timeout=5
    )
    finals = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert len(finals) == len(utterances.texts), finals
    for ref, hyp in zip(utterances.texts, finals, strict=True):
        assert wer(ref, hyp) <= WER_BOUND, (ref, hyp)
    assert all(not isinstance(f, TranscriptionFrame) or f.text for f in down)


async def test_tts_service_streams_at_the_pipeline_rate(tts_url: str) -> None:
    tts = create_tts_service(TTSConfig(voice="en_US-joe-medium"), default_url=tts_url)
    assert isinstance(tts, VoiceAgentTTSService)
    down, _ = await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame("Hello, thanks for calling. How can I help you today?"), SleepFrame(sleep=1.5)],
        pipeline_params=PipelineParams(audio_out_sample_rate=8000),
        start_timeout=5,
    )
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == 8000 and f.num_channels == 1 for f in audio)
    seconds = sum(len(f.audio) for f in audio) / 2 / 8000
    assert 2.0 < seconds < 6.0, seconds
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame) < kinds.index(TTSStoppedFrame)


async def test_tts_service_reports_server_errors(tts_url: str) -> None:
    from pipecat.frames.frames import ErrorFrame

    tts = create_tts_service(TTSConfig(voice="no-such-voice"), default_url=tts_url)
    _, up = await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(sleep=0.5)],
        pipeline_params=PipelineParams(audio_out_sample_rate=16000),
        start_timeout=5,
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "unknown voice" in errors[0].error
