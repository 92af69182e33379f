"""Telephony simulator: a TEST DOUBLE of Twilio and Vobiz for tests, `voicectl simulate` and the benchmarks.

It follows the protocol reference (/work/shared/reference/telephony-protocols.md) and behaves like the carrier
towards the voice server:
- posts the signed answer webhook (Twilio: form + X-Twilio-Signature, B4/B7; Vobiz: form with Event=StartApp +
  X-Vobiz-Signature-V3 and nonce, A1/A4), and parses the TwiML / XML it gets back;
- opens the media WebSocket (Twilio: `connected` then `start` with customParameters, B5; Vobiz: nested `start`
  with mediaFormat from the `contentType` the XML asked for, A2) and streams the caller's audio in real time as
  20 ms frames (μ-law 8 kHz, or L16 8/16 kHz in the byte order configured, network order by default);
- plays the agent's audio out of a buffer at real time like a handset: `mark` / `checkpoint` are acknowledged when
  playback reaches them, `clear` drops the buffer (Twilio echoes the pending marks, Vobiz acknowledges with
  `clearedAudio` and never acknowledges the dropped checkpoints), Vobiz `stop` ends the stream;
- sends DTMF like the carrier (`dtmf` frames), barges in at a chosen time, and ends the stream the carrier's way
  (Twilio `stop`, Vobiz: just closes the socket).
It records what the caller heard, when, and the latency of every answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.g711 import ulaw_decode, ulaw_encode
from telephony.twilio import twilio_signature
from telephony.vobiz import vobiz_signature_v2, vobiz_signature_v3
from voice_server.codecs import l16_to_native, native_to_l16

log = logging.getLogger(__name__)

FRAME_S = 0.02
BARGE_QUIET_S = 0.3
SPEECH_RMS = 300.0  # int16 RMS above which a 20 ms frame counts as speech (silence/μ-law noise is far below)

Carrier = Literal["twilio", "vobiz"]


def pcm_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


def speech_bounds(pcm: bytes, sample_rate: int) -> tuple[float, float]:
    """Seconds of the first and last 20 ms frame with speech in `pcm` (0, 0 when silent)."""
    n = int(sample_rate * FRAME_S) * 2
    loud = [i for i in range(0, len(pcm), n) if pcm_rms(pcm[i: i + n]) > SPEECH_RMS]
    if not loud:
        return 0.0, 0.0
    return loud[0] / 2 / sample_rate, (loud[-1] + n) / 2 / sample_rate


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    if from_rate == to_rate:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    return np.asarray(soxr.resample(samples, from_rate, to_rate), dtype=np.int16).tobytes()


@dataclass
class CallerTurn:
    """One thing the caller does. By default: wait until the agent has finished speaking, pause, then talk."""

    audio: bytes = b""  # PCM16 mono at `sample_rate`
    sample_rate: int = 8000
    gap_s: float = 0.5  # silence after the agent stops before the caller talks
    barge_in_after_s: float | None = None  # instead: start talking this long after the agent starts speaking
    at_s: float | None = None  # instead: at this time on the call timeline
    dtmf: str = ""  # keys to press (sent as dtmf frames) instead of, or before, audio
    raw: list[str | bytes] = field(default_factory=list)  # frames sent as they are (hostile-input tests)
    label: str = ""


@dataclass
class CallScript:
    turns: list[CallerTurn] = field(default_factory=list)
    # After the last turn: wait for the agent's answer, then hang up this long after it stops (None: wait for the
    # agent/carrier to end the call, up to max_duration_s).
    hangup_after_s: float | None = 1.0
    max_duration_s: float = 60.0
    agent_silence_s: float = 0.7  # the agent "has finished" after this much silence on the line


@dataclass
class AnswerTiming:
    turn: int
    label: str
    end_of_speech: float  # monotonic: caller's last speech frame left the simulator
    first_audio: float | None = None  # monotonic: first agent audio message received afterwards
    first_heard: float | None = None  # monotonic: that audio reached the caller's ear (played from the buffer)

    @property
    def voice_to_voice_ms(self) -> float | None:
        return round((self.first_audio - self.end_of_speech) * 1000, 1) if self.first_audio else None


@dataclass
class BargeIn:
    started: float  # monotonic: caller's speech onset
    clear_at: float | None = None  # clear / clearAudio received
    agent_stopped_at: float | None = None  # end of the agent speech the caller was hearing at the onset
    _last_loud: float | None = None

    @property
    def stop_latency_ms(self) -> float | None:
        if self.agent_stopped_at is None:
            return None
        return round(max(0.0, self.agent_stopped_at - self.started) * 1000, 1)


@dataclass
class CallReport:
    carrier: Carrier
    carrier_call_id: str
    answer_xml: str = ""
    rejected_message: str | None = None  # <Say>/<Speak> + <Hangup> instead of a stream
    http_status: int = 0
    ws_refused: str | None = None
    stream_format: str = ""
    socket_opened: float | None = None
    first_agent_audio: float | None = None
    answers: list[AnswerTiming] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    marks_sent: list[tuple[str, float]] = field(default_factory=list)  # (name, when acknowledged)
    marks_received: list[tuple[str, float]] = field(default_factory=list)
    heard_segments: list[tuple[float, float]] = field(default_factory=list)  # agent speech as the caller heard it
    ended_by: str = ""  # "caller", "carrier_hangup", "server_closed", "stop", "timeout"
    ended_at: float | None = None
    carrier_hangup_at: float | None = None
    agent_audio_s: float = 0.0
    heard_pcm: bytearray = field(default_factory=bytearray)  # what the caller heard, at the output rate
    heard_rate: int = 8000
    t0: float = 0.0

    @property
    def greeting_latency_ms(self) -> float | None:
        if self.socket_opened is None or self.first_agent_audio is None:
            return None
        return round((self.first_agent_audio - self.socket_opened) * 1000, 1)



@dataclass
class CarrierAccount:
    """Credentials the simulator signs with (the same ones the backend hands the voice server)."""

    carrier: Carrier
    account_id: str
    auth_token: str
    # Numbers the account owns at the carrier (the fake carrier's numbers API answers from this).
    numbers: set[str] = field(default_factory=set)


class _Playback:
    """The carrier-side playback buffer: audio chunks and marks in order, played at real time."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.items: deque[bytes | str] = deque()
        self.frame_bytes = int(rate * FRAME_S) * 2

    def pop_frame(self) -> tuple[bytes, list[str]]:
        """Up to one 20 ms frame of audio, and the marks reached on the way."""
        out = bytearray()
        marks: list[str] = []
        while self.items:
            head = self.items[0]
            if isinstance(head, str):
                marks.append(head)
                self.items.popleft()
                continue
            if len(out) >= self.frame_bytes:
                break
            need = self.frame_bytes - len(out)
            out += head[:need]
            if len(head) > need:
                self.items[0] = head[need:]
            else:
                self.items.popleft()
        return bytes(out), marks

    def clear(self) -> list[str]:
        marks = [i for i in self.items if isinstance(i, str)]
        self.items.clear()
        return marks

    @property
    def has_audio(self) -> bool:
        return any(isinstance(i, bytes) for i in self.items)


class SimulatedCall:
    def __init__(self, *, carrier: Carrier, answer_url: str, account: CarrierAccount, from_number: str,
                 to_number: str, script: CallScript, http: httpx.AsyncClient | None = None,
                 carrier_call_id: str | None = None, direction: str = "inbound",
                 l16_byte_order: str = "big", status_callback_url: str | None = None) -> None:
        self.carrier = carrier
        self.answer_url = answer_url
        self.account = account
        self.from_number = from_number
        self.to_number = to_number
        self.script = script
        self.direction = direction
        self.l16_byte_order = l16_byte_order
        self.status_callback_url = status_callback_url
        self._http = http
        if carrier_call_id is None:
            carrier_call_id = ("CA" + secrets.token_hex(16)) if carrier == "twilio" else str(uuid.uuid4())
        self.report = CallReport(carrier=carrier, carrier_call_id=carrier_call_id)
        self.stream_id = ("MZ" + secrets.token_hex(16)) if carrier == "twilio" else str(uuid.uuid4())
        self._ws: ClientConnection | None = None
        self._in_rate = 8000
        self._in_encoding = "mulaw"
        self._out_rate = 8000
        self._playback = _Playback(8000)
        self._outgoing: deque[bytes] = deque()  # caller PCM frames waiting to be sent
        self._dtmf: deque[str] = deque()
        self._done = asyncio.Event()
        self._agent_speaking_since: float | None = None
        self._agent_silent_since: float = 0.0
        self._seq = 0
        self._chunk = 0
        self._caller_speaking_until = 0.0
        self._marks_due: list[str] = []
        # What the callee's side hears, frame by frame (PCM16, rate): the fake carrier decodes in-band keypad tones.
        self.heard_listeners: list[Callable[[bytes, int], None]] = []

    # -- the answer webhook -----------------------------------------------------------------------------------
    def _params(self) -> dict[str, str]:
        if self.carrier == "twilio":
            return {
                "CallSid": self.report.carrier_call_id, "AccountSid": self.account.account_id,
                "From": self.from_number, "To": self.to_number, "Caller": self.from_number,
                "Called": self.to_number, "CallStatus": "ringing" if self.direction == "inbound" else "in-progress",
                "ApiVersion": "2010-04-01", "Direction": "inbound" if self.direction == "inbound" else "outbound-api",
            }
        return {
            "CallUUID": self.report.carrier_call_id, "From": self.from_number.lstrip("+"),
            "To": self.to_number.lstrip("+"), "Direction": self.direction, "Event": "StartApp",
            "CallStatus": "ringing" if self.direction == "inbound" else "in-progress",
            "ParentAuthID": self.account.account_id,
            "SessionStart": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
        }

    def signed_headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        if self.carrier == "twilio":
            return {"X-Twilio-Signature": twilio_signature(self.account.auth_token, url, params),
                    "User-Agent": "TwilioProxy/1.1"}
        nonce = str(secrets.randbelow(10 ** 20)).zfill(20)
        return {
            "X-Vobiz-Signature-V3": vobiz_signature_v3(self.account.auth_token, url, nonce),
            "X-Vobiz-Signature-V3-Nonce": nonce,
            "X-Vobiz-Signature-V2": vobiz_signature_v2(self.account.auth_token, url, nonce),
            "X-Vobiz-Signature-V2-Nonce": nonce,
            "User-Agent": "Vobiz",
        }

    async def post_answer(self, http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> httpx.Response:
        params = self._params()
        hdrs = self.signed_headers(self.answer_url, params) if headers is None else headers
        return await http.post(self.answer_url, data=params, headers=hdrs)

    def _parse_answer(self, body: str) -> tuple[str, dict[str, str]]:
        """Returns (websocket URL, custom parameters); records a spoken rejection instead."""
        root = ET.fromstring(body)  # noqa: S314 - the voice server's own answer, read by a test double
        if root.tag != "Response":
            raise ValueError(f"answer is not a <Response>: {root.tag}")
        say = root.find("Say") if self.carrier == "twilio" else root.find("Speak")
        if say is not None and root.find("Hangup") is not None:
            self.report.rejected_message = (say.text or "").strip()
            return "", {}
        if self.carrier == "twilio":
            stream = root.find("Connect/Stream")
            if stream is None:
                raise ValueError("no <Connect><Stream> in the TwiML")
            params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
            url = stream.get("url", "")
            if urlsplit(url).query:
                raise ValueError("Twilio drops query strings from <Stream url>")
            self.report.stream_format = "audio/x-mulaw;rate=8000"
            return url, params
        stream = root.find("Stream")
        if stream is None:
            raise ValueError("no <Stream> in the Vobiz XML")
        if stream.get("bidirectional") != "true" or stream.get("keepCallAlive") != "true":
            raise ValueError("Vobiz needs bidirectional=true and keepCallAlive=true or the call ends at once")
        if stream.get("audioTrack", "inbound") != "inbound":
            raise ValueError("audioTrack must be inbound with a bidirectional stream")
        content = stream.get("contentType", "audio/x-l16;rate=8000")
        self.report.stream_format = content
        self._in_encoding = "mulaw" if "mulaw" in content else "l16"
        self._in_rate = 16000 if "16000" in content else 8000
        return (stream.text or "").strip(), {}

    # -- the call ---------------------------------------------------------------------------------------------
    async def run(self) -> CallReport:
        http = self._http or httpx.AsyncClient(timeout=10.0)
        try:
            resp = await self.post_answer(http)
            self.report.http_status = resp.status_code
            self.report.answer_xml = resp.text
            if resp.status_code != 200:
                self.report.ended_by = "webhook_rejected"
                return self.report
            url, params = self._parse_answer(resp.text)
            if not url:
                self.report.ended_by = "rejected"
                return self.report
            await self._stream(url, params)
            await self._after_call(http)
        finally:
            if self._http is None:
                await http.aclose()
        return self.report

    async def _stream(self, url: str, params: dict[str, str]) -> None:
        self._out_rate = self._in_rate
        self._playback = _Playback(self._out_rate)
        self.report.heard_rate = self._out_rate
        try:
            ws = await connect(url, max_size=2 ** 20, open_timeout=10)
        except Exception as exc:  # refused at the handshake
            self.report.ws_refused = f"{type(exc).__name__}: {exc}"
            self.report.ended_by = "refused"
            return
        self._ws = ws
        self.report.socket_opened = self.report.t0 = time.monotonic()
        try:
            await self._send_start(ws, params)
            tasks = [asyncio.create_task(self._receiver(ws)), asyncio.create_task(self._clock(ws)),
                     asyncio.create_task(self._director())]
            try:
                await asyncio.wait_for(self._done.wait(), self.script.max_duration_s)
            except TimeoutError:
                self.report.ended_by = self.report.ended_by or "timeout"
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                    await task
        finally:
            self.report.ended_at = self.report.ended_at or time.monotonic()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _send_start(self, ws: ClientConnection, params: dict[str, str]) -> None:
        if self.carrier == "twilio":
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            self._seq = 1
            await ws.send(json.dumps({
                "event": "start", "sequenceNumber": str(self._seq), "streamSid": self.stream_id,
                "start": {"accountSid": self.account.account_id, "streamSid": self.stream_id,
                          "callSid": self.report.carrier_call_id, "tracks": ["inbound"], "customParameters": params,
                          "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
            }))
        else:
            await ws.send(json.dumps({
                "sequenceNumber": 0, "event": "start",
                "start": {"callId": self.report.carrier_call_id, "streamId": self.stream_id, "accountId": "500025",
                          "tracks": ["inbound"],
                          "mediaFormat": {"encoding": f"audio/x-{self._in_encoding}", "sampleRate": self._in_rate}},
                "extra_headers": "{}",
            }))

    def _encode(self, pcm: bytes) -> str:
        raw = ulaw_encode(pcm) if self._in_encoding == "mulaw" else native_to_l16(pcm, self.l16_byte_order)
        return base64.b64encode(raw).decode("ascii")

    async def _send_media(self, ws: ClientConnection, pcm: bytes) -> None:
        self._seq += 1
        self._chunk += 1
        if self.carrier == "twilio":
            ts = int((time.monotonic() - self.report.t0) * 1000)
            msg: dict[str, Any] = {"event": "media", "sequenceNumber": str(self._seq), "streamSid": self.stream_id,
                   "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(ts),
                             "payload": self._encode(pcm)}}
        else:
            msg = {"sequenceNumber": self._seq, "streamId": self.stream_id, "event": "media",
                   "media": {"track": "inbound", "timestamp": str(int(time.time() * 1000)), "chunk": self._chunk,
                             "payload": self._encode(pcm)}, "extra_headers": "{}"}
        await ws.send(json.dumps(msg))

    async def send_dtmf(self, ws: ClientConnection, digit: str) -> None:
        self._seq += 1
        if self.carrier == "twilio":
            msg: dict[str, Any] = {"event": "dtmf", "streamSid": self.stream_id, "sequenceNumber": str(self._seq),
                                   "dtmf": {"track": "inbound_track", "digit": digit}}
        else:
            msg = {"event": "dtmf", "streamId": self.stream_id, "sequenceNumber": self._seq,
                   "dtmf": {"digit": digit}}
        await ws.send(json.dumps(msg))

    async def send_raw(self, text: str | bytes) -> None:
        """For hostile-input tests: anything at all on the media socket."""
        if self._ws is not None:
            await self._ws.send(text)

    async def _clock(self, ws: ClientConnection) -> None:
        """Every 20 ms, like the carrier: one caller frame out, one agent frame played from the buffer."""
        start = time.monotonic()
        n = 0
        while True:
            n += 1
            delay = start + n * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.tick(ws, time.monotonic())

    async def tick(self, ws: ClientConnection, now: float) -> None:
        """One 20 ms step of the carrier (a load generator may drive many calls' steps from one timer)."""
        while self._dtmf:
            await self.send_dtmf(ws, self._dtmf.popleft())
        pcm = self._outgoing.popleft() if self._outgoing else b"\x00" * (int(self._in_rate * FRAME_S) * 2)
        await self._send_media(ws, pcm)
        self._play_one(now)
        for name in self._marks_due:
            await self._ack_mark(ws, name, now)
        self._marks_due = []

    def _play_one(self, now: float) -> None:
        frame, marks = self._playback.pop_frame()
        self._marks_due = marks
        speaking = bool(frame) and pcm_rms(frame) > SPEECH_RMS
        heard = frame + b"\x00" * (self._playback.frame_bytes - len(frame))
        self.report.heard_pcm += heard
        for listener in self.heard_listeners:
            listener(heard, self._out_rate)
        if speaking:
            if self._agent_speaking_since is None:
                self._agent_speaking_since = now
                self.report.heard_segments.append((now, now + FRAME_S))
                for answer in self.report.answers:
                    if answer.first_heard is None and answer.first_audio is not None:
                        answer.first_heard = now
            else:
                start, _ = self.report.heard_segments[-1]
                self.report.heard_segments[-1] = (start, now + FRAME_S)
            self._agent_silent_since = 0.0
            for barge in self.report.barge_ins:
                if now >= barge.started and barge.agent_stopped_at is None:
                    barge._last_loud = now + FRAME_S
        else:
            # The agent "stopped" once the line has been quiet for BARGE_QUIET_S (gaps between words are shorter);
            # speech after that is a new answer, not the interrupted one.
            for barge in self.report.barge_ins:
                if barge.agent_stopped_at is None and now >= barge.started:
                    last = barge._last_loud if barge._last_loud is not None else barge.started
                    if now - last >= BARGE_QUIET_S:
                        barge.agent_stopped_at = last
            if self._agent_speaking_since is not None:
                self._agent_silent_since = now
            self._agent_speaking_since = None

    async def _ack_mark(self, ws: ClientConnection, name: str, now: float) -> None:
        self.report.marks_sent.append((name, now))
        if self.carrier == "twilio":
            self._seq += 1
            await ws.send(json.dumps({"event": "mark", "sequenceNumber": str(self._seq), "streamSid": self.stream_id,
                                      "mark": {"name": name}}))
        else:
            await ws.send(json.dumps({"event": "playedStream", "name": name}))

    async def _receiver(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                now = time.monotonic()
                if isinstance(raw, bytes):
                    continue  # carriers reject binary frames; the voice server must not send them
                msg = json.loads(raw)
                event = msg.get("event")
                if event in ("media", "playAudio"):
                    await self._on_audio(msg, now)
                elif event in ("mark", "checkpoint"):
                    name = msg.get("mark", {}).get("name") if event == "mark" else msg.get("name")
                    self.report.marks_received.append((str(name), now))
                    self._playback.items.append(str(name))
                elif event in ("clear", "clearAudio"):
                    self.report.clears.append(now)
                    for barge in self.report.barge_ins:
                        if barge.clear_at is None and now >= barge.started:
                            barge.clear_at = now
                    dropped = self._playback.clear()
                    if event == "clear":  # Twilio echoes marks whose audio was cleared
                        for name in dropped:
                            await self._ack_mark(ws, name, now)
                    else:
                        await ws.send(json.dumps({"event": "clearedAudio", "streamId": self.stream_id,
                                                  "sequenceNumber": self._seq}))
                elif event == "stop":  # Vobiz: the app stopped the stream; the call runs the next XML (none)
                    self.report.ended_by = self.report.ended_by or "stop"
                    self._done.set()
                    return
        except ConnectionClosed:
            pass
        if not self.report.ended_by:
            self.report.ended_by = "server_closed"
        self.report.ended_at = time.monotonic()
        self._done.set()

    async def _on_audio(self, msg: dict[str, Any], now: float) -> None:
        media = msg.get("media", {})
        raw = base64.b64decode(media.get("payload", ""))
        if self.carrier == "twilio" or media.get("contentType") == "audio/x-mulaw":
            pcm, rate = ulaw_decode(raw), 8000
        else:
            pcm, rate = l16_to_native(raw, "little"), int(media.get("sampleRate", self._out_rate))
        pcm = resample_pcm(pcm, rate, self._out_rate)
        self.report.agent_audio_s += len(pcm) / 2 / self._out_rate
        if self.report.first_agent_audio is None:
            self.report.first_agent_audio = now
        for answer in self.report.answers:
            if answer.first_audio is None and now > answer.end_of_speech and pcm_rms(pcm) > SPEECH_RMS / 3:
                answer.first_audio = now
        self._playback.items.append(pcm)

    # -- the caller's behaviour -------------------------------------------------------------------------------
    def _queue_speech(self, turn: CallerTurn) -> float:
        """Queues the turn's audio; returns the monotonic time its speech will end."""
        pcm = resample_pcm(turn.audio, turn.sample_rate, self._in_rate)
        frame = int(self._in_rate * FRAME_S) * 2
        pending_frames = len(self._outgoing)
        frames = [pcm[i: i + frame].ljust(frame, b"\x00") for i in range(0, len(pcm), frame)]
        _, speech_end = speech_bounds(pcm, self._in_rate)
        self._outgoing.extend(frames)
        now = time.monotonic()
        self._caller_speaking_until = now + (pending_frames + len(frames)) * FRAME_S
        return now + pending_frames * FRAME_S + speech_end

    def say(self, pcm: bytes, sample_rate: int = 8000) -> None:
        """Speaks now, outside the script: a callee that reacts (a simulated phone menu answering a key)."""
        self._queue_speech(CallerTurn(audio=pcm, sample_rate=sample_rate))

    async def _wait_agent_done(self, limit_s: float) -> bool:
        """Until the agent has spoken and then been silent for agent_silence_s (and nothing is buffered)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and not self._done.is_set():
            silent_for = time.monotonic() - self._agent_silent_since if self._agent_silent_since else 0.0
            if (self._agent_speaking_since is None and not self._playback.has_audio and self._agent_silent_since
                    and silent_for >= self.script.agent_silence_s):
                return True
            await asyncio.sleep(0.02)
        return False

    async def _wait_agent_speaking(self, limit_s: float, after: float = 0.0) -> bool:
        """Until the caller hears the agent speak (an utterance that started after `after`)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and not self._done.is_set():
            if self._agent_speaking_since is not None and self._agent_speaking_since >= after:
                return True
            await asyncio.sleep(0.01)
        return False

    async def _wait_answer(self, since: float, limit_s: float = 30.0) -> None:
        """The agent answers what the caller said (speech starting after `since`), then falls silent."""
        if await self._wait_agent_speaking(limit_s, after=since):
            await self._wait_agent_done(limit_s)

    async def _director(self) -> None:
        last_speech_end = 0.0
        for index, turn in enumerate(self.script.turns):
            if turn.at_s is not None:
                await asyncio.sleep(max(0.0, self.report.t0 + turn.at_s - time.monotonic()))
            elif turn.barge_in_after_s is not None:
                if not await self._wait_agent_speaking(30.0, after=last_speech_end):
                    break
                started = self._agent_speaking_since or time.monotonic()
                await asyncio.sleep(max(0.0, started + turn.barge_in_after_s - time.monotonic()))
            else:
                if last_speech_end:
                    await self._wait_answer(last_speech_end)
                else:
                    await self._wait_agent_done(30.0)
                await asyncio.sleep(turn.gap_s)
            if self._done.is_set():
                return
            for digit in turn.dtmf:
                self._dtmf.append(digit)
            for frame in turn.raw:
                with contextlib.suppress(ConnectionClosed):
                    await self.send_raw(frame)
            if turn.audio:
                speech_start, _ = speech_bounds(turn.audio, turn.sample_rate)
                end = self._queue_speech(turn)
                if turn.barge_in_after_s is not None:
                    self.report.barge_ins.append(BargeIn(started=time.monotonic() + speech_start))
                self.report.answers.append(AnswerTiming(turn=index, label=turn.label, end_of_speech=end))
                await asyncio.sleep(max(0.0, self._caller_speaking_until - time.monotonic()))
                last_speech_end = end
            elif turn.dtmf:
                last_speech_end = time.monotonic()
        if self.script.hangup_after_s is None:
            await self._done.wait()
            return
        if last_speech_end:
            await self._wait_answer(last_speech_end)
        else:
            await self._wait_agent_done(30.0)
        await asyncio.sleep(self.script.hangup_after_s)
        await self.caller_hangup()

    async def caller_hangup(self) -> None:
        """The caller hangs up: Twilio sends `stop`, Vobiz just closes the socket."""
        if self._done.is_set():
            return
        await self._end_stream("caller")

    async def carrier_hangup(self, reason: str = "carrier_hangup") -> None:
        """The voice server hung up (or transferred) through the REST API: the carrier ends the stream."""
        self.report.carrier_hangup_at = time.monotonic()
        await self._end_stream(reason)

    async def _end_stream(self, ended_by: str) -> None:
        """Twilio sends `stop` on the media socket; Vobiz just closes it."""
        ws = self._ws
        if ws is not None and self.carrier == "twilio":
            with contextlib.suppress(Exception):
                self._seq += 1
                await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(self._seq),
                                          "streamSid": self.stream_id,
                                          "stop": {"accountSid": self.account.account_id,
                                                   "callSid": self.report.carrier_call_id}}))
        self.report.ended_by = self.report.ended_by or ended_by
        self.report.ended_at = time.monotonic()
        self._done.set()

    async def _after_call(self, http: httpx.AsyncClient) -> None:
        """The end-of-call webhook the carrier sends (Twilio status callback / Vobiz hangup)."""
        if self.status_callback_url is None:
            return
        duration = str(int((self.report.ended_at or time.monotonic()) - (self.report.t0 or time.monotonic())))
        if self.carrier == "twilio":
            params = {**self._params(), "CallStatus": "completed", "CallDuration": duration,
                      "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())}
        else:
            source = "API Request" if self.report.ended_by == "carrier_hangup" else "Callee"
            params = {**self._params(), "Event": "Hangup", "CallStatus": "completed", "Duration": duration,
                      "BillDuration": "60", "HangupCause": "NORMAL_CLEARING", "HangupCauseCode": "4000",
                      "HangupSource": source}
        with contextlib.suppress(httpx.HTTPError):
            await http.post(self.status_callback_url, data=params,
                            headers=self.signed_headers(self.status_callback_url, params))
