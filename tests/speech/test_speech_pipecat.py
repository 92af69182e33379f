"""Pipecat's own NvidiaSTTService and our TTS service class, run in Pipecat pipelines against the real servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.workers.runner import WorkerRunner
from speechtest_helpers import WER_BOUND, AsrServer, Utterances, wer

from core.agent_config import STTConfig, TTSConfig
from pipelines.stt import create_stt_service
from pipelines.tts_client import VoiceAgentTTSService, create_tts_service
from voicectl.speech_auth import speech_headers, speech_token


class _Transcripts(FrameProcessor):
    """Collects final transcriptions and says when the expected number arrived."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.finals: list[str] = []
        self.expected = expected
        self.complete = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.finals.append(frame.text)
            if len(self.finals) >= self.expected:
                self.complete.set()
        await self.push_frame(frame, direction)


async def _stream_call(stt: FrameProcessor, utterances: Utterances, frames_per_pause: int,
                       after_frame: Callable[[int, list[str]], Awaitable[list[Frame]]] | None = None) -> list[str]:
    """Streams the call's audio (μ-law decoded, as a transport hands it over) through `stt` in 20 ms frames,
    pausing 50 ms every `frames_per_pause` frames; `after_frame(byte offset, finals so far)` may add frames.
    Returns the finals,
    checked against the phrases."""
    collector = _Transcripts(len(utterances.texts))
    worker = PipelineWorker(
        Pipeline([stt, collector]), cancel_on_idle_timeout=False, params=PipelineParams(audio_in_sample_rate=8000)
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(*_: object) -> None:
        started.set()

    async def call() -> None:
        try:
            await asyncio.wait_for(started.wait(), 10)
            audio = utterances.pcm16_8k
            step = 320  # 20 ms at 8 kHz, 16-bit
            for n, i in enumerate(range(0, len(audio), step)):
                await worker.queue_frame(InputAudioRawFrame(audio=audio[i: i + step], sample_rate=8000,
                                                            num_channels=1))
                for frame in await after_frame(i, collector.finals) if after_frame else []:
                    await worker.queue_frame(frame)
                if n % frames_per_pause == frames_per_pause - 1:
                    await asyncio.sleep(0.05)  # lets the stream keep up
            # Finals come as the server decodes; on a loaded machine that can take a while.
            await asyncio.wait_for(collector.complete.wait(), 60)
        finally:
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), call())
    assert len(collector.finals) == len(utterances.texts), collector.finals
    for ref, hyp in zip(utterances.texts, collector.finals, strict=True):
        assert wer(ref, hyp) <= WER_BOUND, (ref, hyp)
    return collector.finals


async def test_pipecat_nvidia_stt_service_transcribes_a_call(asr_server: AsrServer, utterances: Utterances) -> None:
    stt = create_stt_service(STTConfig(language="en-US"), default_server=asr_server.address,
                             api_key=speech_token("tests"))
    await _stream_call(stt, utterances, frames_per_pause=25)  # about 10x real time


async def test_tts_service_streams_at_the_pipeline_rate(tts_url: str) -> None:
    tts = create_tts_service(TTSConfig(voice="en_US-joe-medium"), default_url=tts_url,
                             auth_headers=lambda: speech_headers("tests"))
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

    tts = create_tts_service(TTSConfig(voice="no-such-voice"), default_url=tts_url,
                             auth_headers=lambda: speech_headers("tests"))
    _, up = await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(sleep=0.5)],
        pipeline_params=PipelineParams(audio_out_sample_rate=16000),
        start_timeout=5,
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "unknown voice" in errors[0].error


async def test_stt_chain_finalizes_at_the_vad_stop_without_waiting_for_the_asr_endpoint(
        asr_server: AsrServer, utterances: Utterances) -> None:
    """The ASR is asked for a 3 s endpointing silence, longer than the 1 s pauses between phrases, so on its own
    it would give one final for the whole call at the end. A VAD stop after each phrase half-closes the stream:
    each phrase gets its own final, and the next phrase is transcribed on the fresh stream."""
    from typing import Any

    from pipecat.frames.frames import VADUserStoppedSpeakingFrame

    from core.agent_config import AgentConfig
    from pipelines.degradation import DegradationPolicy
    from pipelines.resilience import BreakerRegistry
    from pipelines.stt_chain import FallbackRivaSTTService, stt_chain_args

    config = STTConfig(language="en-US")
    no_call: Any = None  # the policy only reaches the call when every endpoint has failed
    policy = DegradationPolicy(AgentConfig(stt=config), "call-1", no_call, no_call)
    stt = create_stt_service(
        config, default_server=asr_server.address, sample_rate=8000, endpoint_silence_ms=3000,
        finalize_on_vad_stop=True, platform_token=lambda: speech_token("tests"), **stt_chain_args(config, asr_server.address, breakers=BreakerRegistry(),
                                                     policy=policy, message=""))
    assert isinstance(stt, FallbackRivaSTTService)
    stops = [int((end + 0.3) * 8000 * 2) // 320 * 320 for end in utterances.speech_end_s]
    finals_at_stop: list[int] = []

    async def vad_stop_after_phrases(offset: int, finals: list[str]) -> list[Frame]:
        if offset not in stops:
            return []
        finals_at_stop.append(len(finals))  # 300 ms after the phrase ended, as the VAD would say
        return [VADUserStoppedSpeakingFrame(stop_secs=0.2)]

    await _stream_call(stt, utterances, frames_per_pause=5, after_frame=vad_stop_after_phrases)
    assert stt.half_closed_streams == len(utterances.texts)
    # Each phrase's final came after its own VAD stop and before the next one's.
    assert finals_at_stop == list(range(len(utterances.texts))), finals_at_stop


async def test_stt_chain_switches_interims_off_at_the_callers_turn_end_not_at_a_pause(
        asr_server: AsrServer, utterances: Utterances) -> None:
    """Interims are asked for only while the agent talks. When a caller barges in, the agent often stops in a pause
    of theirs (the VAD has stopped mid-sentence); the stream switches back only at the caller's turn end. Switched
    there (a switch half-closes the stream), the sentence was finalized in two, and the turn took only the first
    half ("Sorry, what?" of "Sorry, what are your opening hours on Saturday?", CI)."""
    from typing import Any

    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        UserStoppedSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )

    from core.agent_config import AgentConfig
    from pipelines.degradation import DegradationPolicy
    from pipelines.resilience import BreakerRegistry
    from pipelines.stt_chain import FallbackRivaSTTService, stt_chain_args

    config = STTConfig(language="en-US")
    no_call: Any = None
    policy = DegradationPolicy(AgentConfig(stt=config), "call-1", no_call, no_call)
    stt = create_stt_service(
        config, default_server=asr_server.address, sample_rate=8000,
        interims="while_agent_speaks", platform_token=lambda: speech_token("tests"),
        **stt_chain_args(config, asr_server.address, breakers=BreakerRegistry(), policy=policy, message=""))
    assert isinstance(stt, FallbackRivaSTTService)

    def at(seconds: float) -> int:
        return int(seconds * 8000 * 2) // 320 * 320

    first_end = utterances.speech_end_s[0]
    events = {
        at(0.2): [BotStartedSpeakingFrame()],  # the agent talks: interims on
        at(0.6): [VADUserStartedSpeakingFrame(start_secs=0.2)],  # the caller barges in
        at((0.5 + first_end) / 2): [VADUserStoppedSpeakingFrame(stop_secs=0.2)],  # a pause mid-sentence
        at((0.5 + first_end) / 2 + 0.04): [BotStoppedSpeakingFrame()],  # the agent stops in it; the caller goes on
        at(first_end + 0.3): [UserStoppedSpeakingFrame()],  # the turn ends
    }
    rotations: dict[str, int] = {}

    async def agent_then_barge_in(offset: int, finals: list[str]) -> list[Frame]:
        if offset == at(0.65):
            rotations["agent talking"] = stt.half_closed_streams
        elif offset == at(first_end + 0.2):
            rotations["at the pause"] = stt.half_closed_streams
        elif offset == at(first_end + 0.6):
            rotations["after the turn end"] = stt.half_closed_streams
        return events.get(offset, [])

    # Each phrase gets one final (_stream_call checks the count and the words): the first one was not cut in two.
    await _stream_call(stt, utterances, frames_per_pause=5, after_frame=agent_then_barge_in)
    assert rotations == {"agent talking": 1, "at the pause": 1, "after the turn end": 2}, rotations
