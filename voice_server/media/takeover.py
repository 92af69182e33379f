"""Take-over: a supervisor's browser joins a live call and the agent steps out (routes/takeover.py is the socket).

While taken over, the caller's audio goes to the supervisor as it arrives (a tap on the carrier serializer, before
the pipeline, so nothing waits on the STT) and the supervisor's microphone goes to the caller through the call's
own output transport (paced to the carrier's playhead and recorded in the agent's channel, so the recording stays
whole). The agent's answers are held back by the pipeline's gate (pipelines/takeover.py) and its audio dropped by
the transport; the caller's turns are still transcribed. Handing back reopens both.
"""

from __future__ import annotations

from collections.abc import Callable

from pipecat.audio.utils import create_stream_resampler

from pipelines.takeover import AgentGate
from pipelines.transcript import TranscriptWriter
from voice_server.media.serializers import CarrierSerializer
from voice_server.media.transport import CarrierOutputTransport

SUPERVISOR_SAMPLE_RATE = 16000  # the browser protocol's rate (voice_server/media/browser.py)


class Takeover:
    def __init__(self, gate: AgentGate, output: CarrierOutputTransport, serializer: CarrierSerializer,
                 transcript: TranscriptWriter, caller_sink: Callable[[bytes], None]) -> None:
        self._gate = gate
        self._output = output
        self._serializer = serializer
        self._transcript = transcript
        self._caller_sink = caller_sink
        self._resampler = create_stream_resampler()
        self.caller_sample_rate = serializer.info.in_sample_rate
        self.active = False

    async def begin(self) -> None:
        self.active = True
        self._gate.stepped_out = True
        await self._output.step_out()
        self._serializer.caller_listeners.append(self._caller_sink)
        self._transcript.system("[supervisor] took over the call")

    async def say(self, pcm: bytes) -> bool:
        """Supervisor audio (PCM16 mono at SUPERVISOR_SAMPLE_RATE) to the caller."""
        if not self.active or not pcm:
            return False
        audio = await self._resampler.resample(pcm, SUPERVISOR_SAMPLE_RATE, self._output.sample_rate)
        return await self._output.write_supervisor_audio(audio) if audio else False

    def hand_back(self, call_live: bool) -> None:
        if not self.active:
            return
        self.active = False
        if self._caller_sink in self._serializer.caller_listeners:
            self._serializer.caller_listeners.remove(self._caller_sink)
        self._gate.stepped_out = False
        self._output.step_in()
        if call_live:
            self._transcript.system("[supervisor] handed the call back to the agent")
