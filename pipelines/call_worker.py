"""The call's PipelineWorker, with an observer hub that lets the caller's and the agent's audio frames through
only when an observer needs them.

Pipecat hands every frame, at every hop, to its observer hub, which queues a FramePushed and a FrameProcessed
for each observer and wakes that observer's task for each: for 20-40 ms audio frames, 25-50 a second each way
per call, that is a large share of a call's CPU, spent on frames no observer here reads. The latency observer
needs exactly two audio frames per turn (the first TTS audio and the first audio the transport sends after the
caller's turn ended); the turn tracker and the browser's live view read none. So audio frames reach the
observers only from the end of a caller turn until the first agent audio the output transport sends after it,
and FrameProcessed events are never queued for audio (`OBSERVERS_SKIP_AUDIO`, off by default: its A/B on a loaded
2-core machine showed no gain, BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, UserStoppedSpeakingFrame
from pipecat.observers.base_observer import FrameProcessed, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport


class TurnAudioWorkerObserver(WorkerObserver):
    """Pipecat's observer hub, minus the audio frames between turns (see the module docstring)."""

    _AUDIO = (InputAudioRawFrame, OutputAudioRawFrame)  # TTS audio is an OutputAudioRawFrame too

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._audio_wanted = False  # a caller turn ended and its answer's first sent audio is not through yet

    async def on_process_frame(self, data: FrameProcessed) -> None:
        if isinstance(data.frame, self._AUDIO):
            return
        await super().on_process_frame(data)

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, self._AUDIO):
            if not self._audio_wanted or isinstance(frame, InputAudioRawFrame):
                return
            if isinstance(data.source, BaseOutputTransport) and data.direction is FrameDirection.DOWNSTREAM:
                self._audio_wanted = False  # this one goes through: the answer's first audio on the socket
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._audio_wanted = True
        await super().on_push_frame(data)


class CallWorker(PipelineWorker):
    """A PipelineWorker whose observer hub skips audio between turns (pipecat builds its hub in __init__ and
    offers no way to pass another, so it is swapped before anything has used it)."""

    def __init__(self, *args: Any, skip_audio: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if skip_audio:
            self._observer = TurnAudioWorkerObserver(observers=self._observer._observers)
