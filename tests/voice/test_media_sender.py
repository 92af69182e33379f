"""The output media sender the voice server installs (voice_server/media/sender.py) keeps Pipecat's behaviour:
agent audio goes out in order, in whole chunks, and a peer that stops reading is written off after the write
timeout with an error, as with Pipecat's own sender."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import ErrorFrame, OutputAudioRawFrame, StartFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

import voice_server.media.transport  # noqa: F401 - installs the sender, as the voice server does
from voice_server.media import sender

RATE = 8000
CHUNK = RATE * 2 * 40 // 1000  # 40 ms of PCM16


class RecordingOutput(BaseOutputTransport):
    """Writes are recorded; once `stuck`, a write never returns (a peer that stopped reading)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE,
                                         audio_out_write_timeout_secs=timeout_s))
        self.written: list[bytes] = []
        self.stuck = False
        self.wrote = asyncio.Event()  # set after every write

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self.stuck:
            await asyncio.Event().wait()
        self.written.append(frame.audio)
        self.wrote.set()
        return True

    async def wait_written(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.written) < count:
                self.wrote.clear()
                await self.wrote.wait()


async def test_the_installed_sender_writes_audio_in_order_and_gives_up_on_a_stuck_peer() -> None:
    assert BaseOutputTransport.MediaSender is sender.MediaSender
    output = RecordingOutput(timeout_s=0.3)
    worker = PipelineWorker(Pipeline([output]), params=PipelineParams(audio_out_sample_rate=RATE))
    errors: list[ErrorFrame] = []
    errored = asyncio.Event()

    @worker.event_handler("on_pipeline_error")
    async def on_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame)
        errored.set()

    workers = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await workers.add_workers(worker)
    runner = asyncio.create_task(workers.run())
    try:
        # 100 ms in one frame and 60 ms in another: whole 40 ms chunks, in order, the rest held for the next.
        audio = bytes(range(256)) * 20
        await worker.queue_frames([OutputAudioRawFrame(audio[:CHUNK * 5 // 2], RATE, 1),
                                 OutputAudioRawFrame(audio[CHUNK * 5 // 2:CHUNK * 4], RATE, 1)])
        await output.wait_written(4)
        assert b"".join(output.written) == audio[:CHUNK * 4]
        assert all(len(chunk) == CHUNK for chunk in output.written)
        assert isinstance(output._media_senders[None], sender.MediaSender)  # noqa: SLF001

        output.stuck = True
        await worker.queue_frames([OutputAudioRawFrame(audio[:CHUNK], RATE, 1)])
        await asyncio.wait_for(errored.wait(), 5)
        assert "stopped reading" in errors[0].error
    finally:
        await worker.cancel()
        await asyncio.wait_for(runner, 10)
