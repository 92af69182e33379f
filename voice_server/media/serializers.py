"""One Pipecat FrameSerializer per carrier (reference B5 for Twilio, A2 for Vobiz).

The `start` message is read by the media route before the pipeline exists (it carries the token and the audio
format), so these serializers only see what follows. Both are tolerant: a malformed or unknown frame is counted
and skipped; a flood of them ends the call cleanly with the reason recorded (SerializerHooks.on_protocol_error).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    AudioRawFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
)
from pipecat.serializers.base_serializer import FrameSerializer

from core.g711 import ulaw_decode, ulaw_encode
from pipelines.frames import PlaybackMarkFrame
from pipelines.observers import CallAudioSink
from voice_server.codecs import l16_to_native, native_to_l16
from voice_server.media.playout import PlayoutTracker

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024  # a 20 ms L16/16k frame is ~1 KB of JSON; anything this big is not media
MAX_CONSECUTIVE_MALFORMED = 50
MAX_MALFORMED = 500

Encoding = Literal["mulaw", "l16"]


class StartError(ValueError):
    """The first frames of a media socket were not a usable `start`."""


@dataclass
class StreamInfo:
    carrier: Literal["twilio", "vobiz", "browser"]
    stream_id: str
    carrier_call_id: str
    in_encoding: Encoding
    in_sample_rate: int
    out_encoding: Encoding
    out_sample_rate: int
    custom_parameters: dict[str, str] = field(default_factory=dict)
    account_id: str = ""


def parse_twilio_start(message: dict[str, Any]) -> StreamInfo:
    start = message.get("start")
    if not isinstance(start, dict):
        raise StartError("start frame without a start object")
    stream_sid = start.get("streamSid") or message.get("streamSid")
    call_sid = start.get("callSid")
    if not stream_sid or not call_sid:
        raise StartError("start frame without streamSid/callSid")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        params = {}
    fmt = start.get("mediaFormat") or {}
    rate = int(fmt.get("sampleRate") or 8000) if isinstance(fmt, dict) else 8000
    return StreamInfo(
        carrier="twilio", stream_id=str(stream_sid), carrier_call_id=str(call_sid),
        in_encoding="mulaw", in_sample_rate=rate, out_encoding="mulaw", out_sample_rate=8000,
        custom_parameters={str(k): str(v) for k, v in params.items()},
        account_id=str(start.get("accountSid") or ""),
    )


def _vobiz_encoding(value: Any) -> Encoding:
    text = str(value or "audio/x-l16").lower()
    if "mulaw" in text or "pcmu" in text:
        return "mulaw"
    if "l16" in text or "pcm" in text or "linear" in text:
        return "l16"
    raise StartError(f"unsupported Vobiz mediaFormat.encoding {value!r}")


def parse_vobiz_start(message: dict[str, Any]) -> StreamInfo:
    """Current docs nest the ids in `start`; an older page showed them flat. Both are accepted."""
    start = message.get("start") if isinstance(message.get("start"), dict) else message
    assert isinstance(start, dict)
    stream_id = start.get("streamId") or message.get("streamId")
    call_id = start.get("callId") or message.get("callId") or message.get("callUUID")
    if not stream_id or not call_id:
        raise StartError("Vobiz start frame without streamId/callId")
    fmt = start.get("mediaFormat")
    if isinstance(fmt, dict):
        encoding = _vobiz_encoding(fmt.get("encoding"))
        rate = int(fmt.get("sampleRate") or 8000)
    else:  # flat variant: contentType "audio/x-l16;rate=16000"
        content = str(start.get("contentType") or "audio/x-l16;rate=8000")
        encoding = _vobiz_encoding(content)
        rate = int(content.split("rate=")[1]) if "rate=" in content else 8000
    if encoding == "mulaw":
        rate = 8000
    if rate not in (8000, 16000):
        raise StartError(f"unsupported Vobiz inbound sample rate {rate}")
    return StreamInfo(
        carrier="vobiz", stream_id=str(stream_id), carrier_call_id=str(call_id),
        in_encoding=encoding, in_sample_rate=rate,
        # Answer in the same family and rate: no resampling on the hot path, and playAudio accepts both.
        out_encoding=encoding, out_sample_rate=rate,
        account_id=str(start.get("accountId") or ""),
    )


@dataclass
class SerializerHooks:
    """What the serializer reports to the call session."""

    on_stop: Callable[[str], None] = lambda reason: None
    on_protocol_error: Callable[[str], None] = lambda detail: None
    # A problem the caller's client should be told of while the call goes on (the browser's `error` event).
    on_client_error: Callable[[str], None] = lambda message: None


class CarrierSerializer(FrameSerializer):
    """Shared parts: tolerant JSON parsing, audio decoding by the negotiated format, marks, counters."""

    def __init__(self, info: StreamInfo, tracker: PlayoutTracker, hooks: SerializerHooks,
                 l16_byte_order: str = "little", caller_frame_ms: int = 0) -> None:
        super().__init__()
        self.info = info
        self.tracker = tracker
        self.hooks = hooks
        self.l16_byte_order = l16_byte_order
        self.malformed = 0
        self._consecutive_malformed = 0
        self.unknown_events: dict[str, int] = {}
        self.media_frames = 0
        self.caller_audio_s = 0.0
        self.audio_sink: CallAudioSink | None = None  # the call's recording, fed as caller audio arrives
        self.caller_listeners: list[Callable[[bytes], None]] = []  # a supervisor who took the call over
        self._mark_seq = 0
        self._error_reported = False
        # Caller audio enters the pipeline in frames of at least this size (0: as it came): carriers send 20 ms,
        # and every frame costs a queue, a task switch and observer events per processor (CALLER_FRAME_MS).
        self._frame_bytes = int(info.in_sample_rate * caller_frame_ms / 1000) * 2
        self._pending = b""

    # -- inbound ----------------------------------------------------------------------------------------------
    def _bad(self, reason: str) -> None:
        self.malformed += 1
        self._consecutive_malformed += 1
        if self.malformed <= 5 or self.malformed % 100 == 0:
            log.warning("%s stream %s: malformed frame #%d: %s", self.info.carrier, self.info.stream_id,
                        self.malformed, reason)
        if not self._error_reported and (self._consecutive_malformed >= MAX_CONSECUTIVE_MALFORMED
                                         or self.malformed >= MAX_MALFORMED):
            self._error_reported = True
            self.hooks.on_protocol_error(f"too many malformed media frames ({self.malformed}), last: {reason}")

    def _parse(self, data: str | bytes) -> dict[str, Any] | None:
        if isinstance(data, bytes):
            self._bad("binary frame (carriers send JSON text frames)")
            return None
        return self._parse_json_text(data, "event", MAX_FRAME_BYTES)

    def _parse_json_text(self, data: str, kind_key: str, max_chars: int) -> dict[str, Any] | None:
        """A JSON object whose `kind_key` is a string, or None after counting the frame as malformed."""
        if len(data) > max_chars:
            self._bad(f"oversized text frame ({len(data)} characters)")
            return None
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            self._bad("invalid JSON")
            return None
        if not isinstance(message, dict) or not isinstance(message.get(kind_key), str):
            self._bad(f"JSON without a {kind_key!r} string")
            return None
        return message

    def _decode_payload(self, payload: Any) -> bytes | None:
        if not isinstance(payload, str) or not payload:
            self._bad("media without payload")
            return None
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self._bad("payload is not base64")
            return None
        if self.info.in_encoding == "mulaw":
            return ulaw_decode(raw)
        if len(raw) % 2:
            self._bad("odd-length L16 payload")
            raw = raw[:-1]
        return l16_to_native(raw, self.l16_byte_order)

    def _audio_frame(self, payload: Any) -> InputAudioRawFrame | None:
        pcm = self._decode_payload(payload)
        if not pcm:
            return None
        return self._pcm_frame(pcm)

    def _inbound_media(self, message: dict[str, Any], tracks: tuple[str, ...]) -> InputAudioRawFrame | None:
        """A `media` event: the caller's audio, or None for another track (or a malformed frame, counted)."""
        media = message.get("media")
        if not isinstance(media, dict):
            self._bad("media frame without media object")
            return None
        if media.get("track", "inbound") not in tracks:
            return None
        return self._audio_frame(media.get("payload"))

    def _pcm_frame(self, pcm: bytes) -> InputAudioRawFrame | None:
        """Caller audio (native PCM16); the recording takes it with its arrival on the call timeline. The pipeline
        gets it once a frame's worth has arrived (None until then)."""
        self._consecutive_malformed = 0
        self.media_frames += 1
        self.caller_audio_s += len(pcm) / 2 / self.info.in_sample_rate
        if self.audio_sink is not None:
            self.audio_sink.add_caller(pcm, self.info.in_sample_rate, self.tracker.now_s())
        for listener in self.caller_listeners:
            listener(pcm)
        if self._pending or len(pcm) < self._frame_bytes:
            self._pending += pcm
            if len(self._pending) < self._frame_bytes:
                return None
            pcm, self._pending = self._pending, b""
        return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self.info.in_sample_rate)

    def _dtmf_frame(self, digit: Any) -> InputDTMFFrame | None:
        try:
            return InputDTMFFrame(KeypadEntry(str(digit)))
        except ValueError:
            self._bad(f"unknown DTMF digit {digit!r}")
            return None

    def _unknown(self, event: str) -> None:
        self.unknown_events[event] = self.unknown_events.get(event, 0) + 1
        if self.unknown_events[event] == 1:
            log.info("%s stream %s: ignoring event %r", self.info.carrier, self.info.stream_id, event[:40])

    # -- outbound ---------------------------------------------------------------------------------------------
    def _encode_audio(self, frame: AudioRawFrame) -> str:
        if self.info.out_encoding == "mulaw":
            raw = ulaw_encode(frame.audio)
        else:  # playAudio L16 is little-endian
            raw = native_to_l16(frame.audio, "little")
        return base64.b64encode(raw).decode("ascii")

    def stop_message(self) -> str | None:
        """What to send before a REST hang-up so the carrier does not reconnect the stream (None: nothing)."""
        return None

    def next_mark_name(self, prefix: str) -> str:
        self._mark_seq += 1
        return f"{prefix}-{self._mark_seq}"


class TwilioMediaSerializer(CarrierSerializer):
    async def serialize(self, frame: Frame) -> str | bytes | None:
        sid = self.info.stream_id
        if isinstance(frame, AudioRawFrame):
            if not frame.audio:
                return None
            return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": self._encode_audio(frame)}})
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"event": "clear", "streamSid": sid})
        if isinstance(frame, PlaybackMarkFrame):
            return json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": frame.mark}})
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        message = self._parse(data)
        if message is None:
            return None
        event = message["event"]
        if event == "media":
            return self._inbound_media(message, ("inbound", "inbound_track"))
        self._consecutive_malformed = 0
        if event == "mark":
            mark = message.get("mark")
            if isinstance(mark, dict) and mark.get("name"):
                self.tracker.on_mark_played(str(mark["name"]))
            else:
                self._bad("mark without name")
            return None
        if event == "dtmf":
            dtmf = message.get("dtmf")
            return self._dtmf_frame(dtmf.get("digit") if isinstance(dtmf, dict) else None)
        if event == "stop":
            self.hooks.on_stop("caller_hangup")
            return None
        if event in ("connected", "start"):
            return None  # a repeated start on the same socket changes nothing
        self._unknown(event)
        return None


class VobizMediaSerializer(CarrierSerializer):
    async def serialize(self, frame: Frame) -> str | bytes | None:
        sid = self.info.stream_id
        if isinstance(frame, AudioRawFrame):
            if not frame.audio:
                return None
            content_type = "audio/x-mulaw" if self.info.out_encoding == "mulaw" else "audio/x-l16"
            return json.dumps({
                "event": "playAudio", "streamId": sid,
                "media": {"contentType": content_type, "sampleRate": self.info.out_sample_rate,
                          "payload": self._encode_audio(frame)},
            })
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"event": "clearAudio", "streamId": sid})
        if isinstance(frame, PlaybackMarkFrame):
            return json.dumps({"event": "checkpoint", "streamId": sid, "name": frame.mark})
        return None

    def stop_message(self) -> str | None:
        """Sent before a REST hang-up so Vobiz does not reconnect the stream."""
        return json.dumps({"event": "stop", "streamId": self.info.stream_id})

    async def deserialize(self, data: str | bytes) -> Frame | None:
        message = self._parse(data)
        if message is None:
            return None
        event = message["event"]
        if event == "media":
            return self._inbound_media(message, ("inbound",))
        self._consecutive_malformed = 0
        if event == "playedStream":
            name = message.get("name")
            if name:
                self.tracker.on_mark_played(str(name))
            else:
                self._bad("playedStream without name")
            return None
        if event == "clearedAudio":
            return None
        if event == "dtmf":
            # Shape not documented by Vobiz; pipecat reads dtmf.digit (as Plivo). Accept a flat digit too.
            dtmf = message.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else message.get("digit")
            return self._dtmf_frame(digit)
        if event == "stop":  # not official, but some Vobiz sources list it: treat as the end of the stream
            self.hooks.on_stop("caller_hangup")
            return None
        if event == "start":
            return None
        self._unknown(event)
        return None
