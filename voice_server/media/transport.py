"""The carrier media transport: Pipecat's FastAPI WebSocket transport with an output that follows the carrier.

Pipecat's stock output sends audio at twice real time, so a long answer piles up seconds of audio in the
carrier's buffer: barge-in then depends entirely on `clear`, "bot speaking" ends long before the caller stops
hearing it, and nobody knows what was actually heard. This output instead paces audio to the modelled playhead
(voice_server/media/playout.py) with a small lead, so:
  - the carrier holds at most `lead` of audio; a paused output (possible barge-in) goes quiet within it;
  - a false barge-in resumes exactly where it paused, with nothing lost;
  - an accepted barge-in sends clear/clearAudio, and the recording drops what the carrier dropped;
  - marks/checkpoints are sent in order after the audio before them (end_call waits on them).
Each call waits for its next frame's due time on the process's shared output timer (voice_server/media/pacer.py,
OUTPUT_PACER=shared) or on a sleep of its own (per_call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import WebSocket
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketClient,
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from pipelines.frames import PlaybackMarkFrame, PlaybackPauseFrame, PlaybackResumeFrame
from pipelines.observers import CallAudioSink
from voice_server.media import sender
from voice_server.media.pacer import SharedPacer
from voice_server.media.playout import PlayoutTracker
from voice_server.metrics import VoiceMetrics

log = logging.getLogger(__name__)
sender.install()  # agent audio without two task hops per frame (voice_server/media/sender.py)

# A clear is pointless when the model says nothing has been playing for this long (carriers' own jitter
# buffers may lag our model a little, so keep a margin).
CLEAR_MARGIN_S = 0.5
# A gap shorter than this before a frame is float noise, not silence the caller hears.
UNDERRUN_MIN_GAP_S = 0.001


class CarrierOutputTransport(FastAPIWebsocketOutputTransport):
    def __init__(self, transport: BaseTransport, client: FastAPIWebsocketClient, params: FastAPIWebsocketParams,
                 tracker: PlayoutTracker, lead_s: float, metrics: VoiceMetrics | None = None,
                 pacer: SharedPacer | None = None, **kwargs: object) -> None:
        super().__init__(transport, client, params, **kwargs)
        self.tracker = tracker
        self._lead_s = lead_s
        # The process's shared output timer (OUTPUT_PACER=shared); None: this call sleeps for each frame itself.
        self._sleep = pacer.sleep if pacer is not None else asyncio.sleep
        self._voice_metrics = metrics
        self.audio_sink: CallAudioSink | None = None  # the call's recording: agent audio where it will play
        # Inside one stretch of agent speech (until bot-stopped, a pause or an interruption): a frame that finds
        # the carrier's buffer already empty is an underrun the caller hears as a gap.
        self._in_speech_run = False
        self._generation = 0  # bumped by every interruption: audio waiting to be sent from before it is dropped
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._pause_timer: asyncio.TimerHandle | None = None
        self._paused_since: float | None = None  # a possible barge-in held the audio back (cleared on clear)
        self.paused_count = 0
        # Keypad tones out (pipecat's OutputDTMF frames: the send_digits tool, phone-menu navigation): through
        # this, when the carrier's REST API plays them (Vobiz); otherwise pipecat writes them as tones in the
        # stream's audio (Twilio). Set by the session.
        self.send_digits: Callable[[str], Awaitable[bool]] | None = None
        self.agent_muted = False  # a supervisor took the call over (step_out)

    def _supports_native_dtmf(self) -> bool:
        return self.send_digits is not None

    async def _write_dtmf_native(self, frame: OutputDTMFFrame | OutputDTMFUrgentFrame) -> None:
        assert self.send_digits is not None
        if frame.button is not None and not await self.send_digits(str(frame.button.value)):
            await self._write_dtmf_audio(frame)

    # -- pause / resume (possible barge-in) -------------------------------------------------------------------
    def _pause(self, max_pause_s: float) -> None:
        self.paused_count += 1
        self._in_speech_run = False
        self._paused_since = time.monotonic()
        self._resumed.clear()
        if self._pause_timer:
            self._pause_timer.cancel()
        # Never stay paused for long: an undecided barge-in must not silence the agent (or trip write timeouts).
        self._pause_timer = asyncio.get_running_loop().call_later(max_pause_s, self._resume)

    def _resume(self) -> None:
        if self._pause_timer:
            self._pause_timer.cancel()
            self._pause_timer = None
        self._resumed.set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, PlaybackPauseFrame):
            self._pause(frame.max_pause_s)
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, PlaybackResumeFrame):
            self._resume()
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, InterruptionFrame):
            self._generation += 1
            self._in_speech_run = False
            self._resume()
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if isinstance(frame, BotStoppedSpeakingFrame):  # the media sender ends a stretch of speech
            self._in_speech_run = False
        await super().push_frame(frame, direction)

    # -- writing ----------------------------------------------------------------------------------------------
    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self.agent_muted:  # a supervisor has the line (step_out): the agent's audio goes nowhere
            return False
        if not await self._send_paced(frame.audio, observe=True):
            return False
        frame.metadata["sent_mono"] = time.monotonic()
        return True

    async def write_supervisor_audio(self, pcm: bytes) -> bool:
        """A supervisor who took the call over speaks (PCM16 at the output rate): paced and recorded like the
        agent's audio, whose place it takes."""
        return await self._send_paced(pcm, observe=False)

    async def step_out(self) -> None:
        """The agent leaves the line: its audio waiting to be sent is dropped, what the carrier still holds of it
        is cleared, and later agent audio is not sent until `step_in`."""
        self.agent_muted = True
        self._generation += 1
        self._in_speech_run = False
        self._resume()
        await self._clear_carrier()

    def step_in(self) -> None:
        self.agent_muted = False

    async def _send_paced(self, audio: bytes, observe: bool) -> bool:
        if self._client.is_closing or not self._client.is_connected:
            return False
        generation = self._generation
        entered_s = self.tracker.now_s()
        held = False
        # Follow the playhead: send when the carrier has less than `lead` left to play; hold while paused.
        while True:
            held = held or not self._resumed.is_set()
            await self._resumed.wait()
            if generation != self._generation:
                return False
            ahead = self.tracker.playhead_end_s - self.tracker.now_s() - self._lead_s
            if ahead <= 0:
                break
            await self._sleep(ahead)
            if generation != self._generation:
                return False
            if self._resumed.is_set():
                break
        out = OutputAudioRawFrame(audio=audio, sample_rate=self.sample_rate,
                                  num_channels=self._params.audio_out_channels)
        if not await self._write_frame(out):
            return False
        duration = len(audio) / 2 / self.sample_rate / max(1, self._params.audio_out_channels)
        if self._voice_metrics is not None and observe and not held:
            self._observe_pacing(entered_s)
        self._in_speech_run = observe
        start = self.tracker.on_audio_sent(duration)
        if self.audio_sink is not None:
            self.audio_sink.add_agent(audio, self.sample_rate, start)
        return True

    def _observe_pacing(self, entered_s: float) -> None:
        """Lateness: now against when this frame was due out (the playhead minus the lead, or when it reached
        us if the buffer was already low). Underrun: the buffer ran dry before this frame, mid-speech."""
        assert self._voice_metrics is not None
        now = self.tracker.now_s()
        playhead_end = self.tracker.playhead_end_s
        self._voice_metrics.frame_sent(now - max(entered_s, playhead_end - self._lead_s))
        gap = now - playhead_end
        if self._in_speech_run and gap > UNDERRUN_MIN_GAP_S:
            self._voice_metrics.underrun(gap)

    async def _write_frame(self, frame: Frame) -> bool:
        if isinstance(frame, InterruptionFrame):
            if self.agent_muted:
                return True  # the supervisor is speaking, not the agent: a barge-in must not cut them off
            return await self._clear_carrier(frame)
        return await super()._write_frame(frame)

    async def _clear_carrier(self, frame: InterruptionFrame | None = None) -> bool:
        frame = frame or InterruptionFrame()
        held = self._paused_since is not None and time.monotonic() - self._paused_since < 30.0
        if not held and self.tracker.playhead_end_s < self.tracker.now_s() - CLEAR_MARGIN_S:
            return True  # nothing is playing and nothing was held back: no clear to send
        self._paused_since = None
        frame.metadata["cleared_at_s"] = self.tracker.on_clear()
        return await super()._write_frame(frame)

    async def write_transport_frame(self, frame: Frame) -> None:
        if isinstance(frame, PlaybackMarkFrame):
            if frame.played is None:
                frame.played = asyncio.get_running_loop().create_future()
            due = self.tracker.add_mark(frame.mark, frame.played)
            if not await self._write_frame(frame) and not frame.played.done():
                frame.played.set_result(False)
            if frame.sent is not None and not frame.sent.done():
                frame.sent.set_result(max(0.0, due - self.tracker.now_s()))
            return
        await super().write_transport_frame(frame)


class CarrierTransport(FastAPIWebsocketTransport):
    def __init__(self, websocket: WebSocket, params: FastAPIWebsocketParams, tracker: PlayoutTracker,
                 lead_s: float, metrics: VoiceMetrics | None = None, pacer: SharedPacer | None = None) -> None:
        super().__init__(websocket, params)
        self._output = CarrierOutputTransport(self, self._client, self._params, tracker=tracker, lead_s=lead_s,
                                              metrics=metrics, pacer=pacer, name=self._output_name)

    def output(self) -> CarrierOutputTransport:
        assert isinstance(self._output, CarrierOutputTransport)
        return self._output

    async def send_raw(self, message: str) -> None:
        """Sends a carrier message outside the pipeline (e.g. the Vobiz `stop` before a REST hang-up)."""
        await self._client.send(message)
