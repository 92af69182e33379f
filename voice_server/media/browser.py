"""The browser as one more "carrier": the test-call WebSocket protocol of frontend/README.md.

Up: a JSON `start`, then binary PCM16 LE mono 16 kHz frames (640 bytes = 20 ms), `{"type":"dtmf","digit":"5"}`
for a keypress (an InputDTMFFrame, as the carriers' DTMF events become; an invalid digit gets an `error` event and
the call goes on), `{"type":"hangup"}` to end.
Down: binary PCM16 LE agent audio, `{"type":"clear"}` on barge-in, and JSON events (ready, transcript, keypad, end,
error) sent outside the pipeline by BrowserEvents; `{"type":"keypad","waiting":true}` while the agent's
collect_digits tool waits for keys (false once it has them), so a page or a scripted caller knows when to type.

Unlike a carrier, a browser does not acknowledge playback marks, so the serializer resolves each mark itself when
the modelled playhead reaches it (the browser plays what it gets back to back, as a carrier does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import (
    AudioRawFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from core.call_events import TurnRecorded
from pipelines.frames import PlaybackMarkFrame
from pipelines.keypad import COLLECT_DIGITS
from voice_server.codecs import l16_to_native, native_to_l16
from voice_server.media.playout import PlayoutTracker
from voice_server.media.serializers import CarrierSerializer, SerializerHooks, StartError, StreamInfo

log = logging.getLogger(__name__)

BROWSER_SAMPLE_RATE = 16000
MAX_AUDIO_FRAME_BYTES = 16000  # half a second: the protocol sends 640-byte frames
MAX_TEXT_FRAME_CHARS = 4096


def parse_browser_start(text: str, call_id: str) -> StreamInfo:
    """The first frame must be `{"type":"start","sample_rate":16000,"encoding":"pcm_s16le","channels":1}`."""
    if len(text) > MAX_TEXT_FRAME_CHARS:
        raise StartError("oversized start frame")
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise StartError("the start frame is not JSON") from exc
    if not isinstance(message, dict) or message.get("type") != "start":
        raise StartError('the first frame must be {"type":"start",...}')
    rate, encoding, channels = message.get("sample_rate"), message.get("encoding"), message.get("channels", 1)
    if rate != BROWSER_SAMPLE_RATE or encoding != "pcm_s16le" or channels != 1:
        raise StartError(f"unsupported audio: sample_rate={rate!r} encoding={encoding!r} channels={channels!r}; "
                         f"send {BROWSER_SAMPLE_RATE} Hz pcm_s16le mono")
    return StreamInfo(carrier="browser", stream_id=call_id, carrier_call_id=call_id, in_encoding="l16",
                      in_sample_rate=BROWSER_SAMPLE_RATE, out_encoding="l16", out_sample_rate=BROWSER_SAMPLE_RATE)


class BrowserSerializer(CarrierSerializer):
    def __init__(self, info: StreamInfo, tracker: PlayoutTracker, hooks: SerializerHooks,
                 l16_byte_order: str = "little", caller_frame_ms: int = 0) -> None:
        # browsers send little-endian
        super().__init__(info, tracker, hooks, l16_byte_order="little", caller_frame_ms=caller_frame_ms)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, AudioRawFrame):
            return native_to_l16(frame.audio, "little") if frame.audio else None
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"type": "clear"})
        if isinstance(frame, PlaybackMarkFrame):
            # The transport registered the mark at the current end of the playhead; it plays when that is reached.
            delay = max(0.0, self.tracker.playhead_end_s - self.tracker.now_s())
            asyncio.get_running_loop().call_later(delay, self.tracker.on_mark_played, frame.mark)
            return None
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes):
            if not data or len(data) > MAX_AUDIO_FRAME_BYTES:
                self._bad(f"audio frame of {len(data)} bytes")
                return None
            if len(data) % 2:
                self._bad("odd-length PCM16 frame")
                data = data[:-1]
            return self._pcm_frame(l16_to_native(data, "little"))
        message = self._parse_json_text(data, "type", MAX_TEXT_FRAME_CHARS)
        if message is None:
            return None
        self._consecutive_malformed = 0
        kind = message["type"]
        if kind == "dtmf":
            digit = message.get("digit")
            frame = self._dtmf_frame(digit)
            if frame is None:
                self.hooks.on_client_error(f"invalid keypad digit {str(digit)[:8]!r}: send one of 0-9, * or #")
            return frame
        if kind == "hangup":
            self.hooks.on_stop("caller_hangup")
        elif kind != "start":  # a repeated start changes nothing
            self._unknown(kind)
        return None


class BrowserEvents(BaseObserver):
    """Live transcript for the browser: interim caller text as the STT hears it, agent text as the TTS speaks it,
    and each finished turn (the same TurnRecorded the backend stores) as the final line. One sender task keeps them in
    order and never blocks the pipeline."""

    def __init__(self, send: Callable[[str], Awaitable[None]], stt: FrameProcessor, tts: FrameProcessor) -> None:
        super().__init__(observe_every_push=True)
        self._send = send
        self._stt = stt
        self._tts = tts
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._agent_text = ""  # agent words played since the last agent turn
        self._keypad_calls: set[str] = set()  # collect_digits calls waiting for keys (tool call ids)
        self._keypad_seen: set[str] = set()  # every one announced (the frames pass each processor)
        self._closed = False

    def _put(self, event: dict[str, Any]) -> None:
        if self._closed:
            return  # after `end` the browser is gone
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sender(), name="browser-events")
        self._queue.put_nowait(json.dumps(event))

    async def _sender(self) -> None:
        while (message := await self._queue.get()) is not None:
            try:
                await self._send(message)
            except Exception as exc:  # the socket is gone: the session ends on its own
                log.debug("browser event not sent: %s", exc)

    def transcript(self, role: str, text: str, final: bool) -> None:
        self._put({"type": "transcript", "role": role, "text": text, "final": final})

    def turn(self, event: TurnRecorded) -> None:
        text = event.text.strip()
        if event.speaker == "agent":
            # Interrupted before any of it was counted as spoken: settle the line with what was being said.
            text, self._agent_text = text or self._agent_text, ""
        if event.speaker in ("caller", "agent") and text:
            self.transcript(event.speaker, text, True)

    def error(self, message: str) -> None:
        """Shown to the user; the call goes on (a call-ending problem is followed by `end`)."""
        self._put({"type": "error", "message": message[:200]})

    def end(self, reason: str) -> None:
        self._put({"type": "end", "reason": reason})

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if data.direction != FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, InterimTranscriptionFrame) and data.source is self._stt and frame.text.strip():
            self.transcript("caller", frame.text.strip(), False)
        elif isinstance(frame, TTSTextFrame) and data.source is self._tts and frame.text.strip():
            self._agent_text = f"{self._agent_text} {frame.text.strip()}".strip()
            self.transcript("agent", self._agent_text, False)
        elif isinstance(frame, FunctionCallInProgressFrame) and frame.function_name == COLLECT_DIGITS:
            if frame.tool_call_id not in self._keypad_seen:
                self._keypad_seen.add(frame.tool_call_id)
                self._keypad_calls.add(frame.tool_call_id)
                self._put({"type": "keypad", "waiting": True})
        elif isinstance(frame, FunctionCallResultFrame | FunctionCallCancelFrame) \
                and frame.tool_call_id in self._keypad_calls:
            self._keypad_calls.discard(frame.tool_call_id)
            if not self._keypad_calls:
                self._put({"type": "keypad", "waiting": False})

    async def close(self, timeout_s: float = 2.0) -> None:
        """Sends what is queued (the end event included), then stops."""
        if self._closed or self._task is None:
            self._closed = True
            return
        self._closed = True
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        self._task.cancel()
