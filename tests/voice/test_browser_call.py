"""Browser test calls end to end: POST /api/v1/test-calls on the real backend, then the voice server's /v1/browser
socket with a real WebSocket client speaking the protocol of frontend/README.md (PCM16 16 kHz up and down, JSON
events), through the same pipeline as a phone call (real VAD, STT, LLM, TTS). The call then shows in the backend
with its turns and a stereo recording. Tokens are single-use; a bad one is refused at the handshake.

Also: the voice picker's backend routes (GET /voices, POST /voices/sample) against the real TTS server.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from stack_helpers import synthesize
from voicetest_helpers import (
    TEST_AGENT,
    VoiceServer,
    active_seconds,
    ended_with_recording,
    read_stereo_wav,
    wait_for_call,
    words_heard,
)
from websockets.exceptions import InvalidStatus

from voice_server.testing.provision import SimLine

pytestmark = pytest.mark.timeout(240)

RATE = 16000
FRAME_BYTES = 640  # 20 ms of PCM16 at 16 kHz, as the browser sends
QUESTION = "Sorry, what are your opening hours on Saturday?"


@dataclass
class BrowserCallLog:
    """What the browser received, with arrival times (seconds since `ready`)."""

    ready: dict[str, Any] | None = None
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    audio: list[tuple[float, int]] = field(default_factory=list)  # (arrival, bytes)
    closed_code: int | None = None

    def of_type(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e.get("type") == kind]

    def transcripts(self, role: str, final: bool | None = None) -> list[str]:
        return [e["text"] for _, e in self.of_type("transcript")
                if e["role"] == role and (final is None or e["final"] is final)]


@pytest.fixture(scope="module")
async def browser_agent(backend_url: str, http: httpx.AsyncClient, owner: tuple[str, str]) -> SimLine:
    """An agent whose greeting may be barged into; it hangs up after 2 s of silence (TEST_AGENT)."""
    token, org_id = owner
    config = {**TEST_AGENT, "interruption": {"protect_greeting": False, "min_words": 1}}
    resp = await http.post(f"{backend_url}/api/v1/agents", headers={"Authorization": f"Bearer {token}"},
                           json={"name": "Browser test agent", "config": config})
    assert resp.status_code == 201, resp.text
    from voice_server.testing.simulator import CarrierAccount

    # SimLine only as a holder of the backend URL, token and agent (no number or carrier is involved).
    return SimLine(backend_url=backend_url, carrier="twilio", number="", org_id=org_id, agent_id=resp.json()["id"],
                   account=CarrierAccount("twilio", "unused", "unused"), access_token=token)


@pytest.fixture(scope="module")
def question_16k(tts_url: str) -> bytes:
    return synthesize(tts_url, QUESTION, sample_rate=RATE)


async def start_test_call(http: httpx.AsyncClient, line: SimLine) -> dict[str, Any]:
    resp = await http.post(f"{line.backend_url}/api/v1/test-calls", headers=line.headers,
                           json={"agent_id": line.agent_id})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def run_browser_call(ws_url: str, question: bytes, barge_in_after_s: float,
                           timeout_s: float = 150.0, after_start: tuple[str, ...] = ()) -> BrowserCallLog:
    """Streams 20 ms frames in real time: silence, the question once the greeting has played for
    `barge_in_after_s`, then silence until the agent ends the call. `after_start`: text frames sent right after
    the start frame."""
    log = BrowserCallLog()
    silence = bytes(FRAME_BYTES)
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": RATE, "encoding": "pcm_s16le", "channels": 1}))
        for text in after_start:
            await ws.send(text)
        t0 = time.monotonic()
        first_audio = asyncio.Event()

        async def receive() -> None:
            async for message in ws:
                now = time.monotonic() - t0
                if isinstance(message, bytes):
                    log.audio.append((now, len(message)))
                    first_audio.set()
                    continue
                event = json.loads(message)
                if event.get("type") == "ready":
                    log.ready = event
                log.events.append((now, event))
                if event.get("type") == "end":
                    return

        async def send() -> None:
            next_at = time.monotonic()
            pending = bytearray()
            question_sent = False
            while True:
                if not question_sent and first_audio.is_set() and log.audio \
                        and time.monotonic() - t0 - log.audio[0][0] >= barge_in_after_s:
                    pending.extend(question[: len(question) // 2 * 2])
                    question_sent = True
                frame = bytes(pending[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0") if pending else silence
                del pending[:FRAME_BYTES]
                await ws.send(frame)
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        sender = asyncio.create_task(send())
        try:
            await asyncio.wait_for(receive(), timeout_s)
        finally:
            sender.cancel()
        try:
            await asyncio.wait_for(ws.wait_closed(), 10)
        except TimeoutError:
            pass
        log.closed_code = ws.close_code
    return log


async def test_browser_call_runs_the_phone_pipeline(voice_server: VoiceServer, http: httpx.AsyncClient,
                                                    browser_agent: SimLine, question_16k: bytes) -> None:
    session = await start_test_call(http, browser_agent)
    assert session["sample_rate"] == RATE
    assert session["ws_url"].startswith("ws://") and "/v1/browser?token=" in session["ws_url"]

    # A keypress with an invalid digit: an error event on the socket, and the call goes on as if it had not come.
    log = await run_browser_call(session["ws_url"], question_16k, barge_in_after_s=1.5,
                                 after_start=(json.dumps({"type": "dtmf", "digit": "X"}),))

    errors = [e["message"] for _, e in log.of_type("error")]
    assert errors == ["invalid keypad digit 'X': send one of 0-9, * or #"], log.events
    assert log.ready is not None and log.ready["call_id"] == session["call_id"] and log.ready["sample_rate"] == RATE
    assert log.audio, "no agent audio came down"
    greeting_at = log.audio[0][0]
    clears = [t for t, _ in log.of_type("clear")]
    assert clears and clears[0] > greeting_at, "the barge-in into the greeting did not send clear"
    said = " ".join(log.transcripts("caller", final=True))
    assert words_heard(said, QUESTION) >= 3, log.events
    assert log.transcripts("caller", final=False), "no interim caller transcript"
    assert log.transcripts("agent")[0].startswith("Hello and thank you for calling Test Clinic"), log.events
    agent_lines = log.transcripts("agent", final=True)
    assert len(agent_lines) >= 2, log.events  # the (interrupted) greeting, then an answer
    caller_final_at = next(t for t, e in log.of_type("transcript") if e["role"] == "caller" and e["final"])
    assert [t for t, _ in log.audio if t > caller_final_at], "no answer audio after the question"
    ends = log.of_type("end")
    assert ends and ends[0][1]["reason"] == "silence_timeout", log.events
    assert log.closed_code == 1000

    call = await wait_for_call(http, browser_agent, session["call_id"], ended_with_recording, timeout_s=60)
    assert call["carrier"] == "browser" and call["direction"] == "inbound"
    assert call["end_reason"] == "silence_timeout"
    speakers = [t["speaker"] for t in call["turns"]]
    assert "caller" in speakers and speakers.count("agent") >= 2, call["turns"]
    resp = await http.get(f"{browser_agent.backend_url}/api/v1/calls/{session['call_id']}/recording/audio",
                          headers=browser_agent.headers)
    assert resp.status_code == 200, resp.text
    rate, caller_ch, agent_ch = read_stereo_wav(resp.content)
    assert rate == RATE
    assert active_seconds(caller_ch, rate) > 1.0, "caller channel (left) is empty"
    assert active_seconds(agent_ch, rate) > 1.5, "agent channel (right) is empty"

    # The token was used: the same URL is refused at the handshake.
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(session["ws_url"]):
            pass
    assert refused.value.response.status_code == 403


async def test_browser_socket_refuses_bad_tokens(voice_server: VoiceServer, http: httpx.AsyncClient,
                                                 browser_agent: SimLine) -> None:
    base = voice_server.url.replace("http://", "ws://")
    for url in (f"{base}/v1/browser", f"{base}/v1/browser?token=nope"):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 403
    session = await start_test_call(http, browser_agent)
    tampered = session["ws_url"][:-3] + ("aaa" if not session["ws_url"].endswith("aaa") else "bbb")
    with pytest.raises(InvalidStatus):
        async with websockets.connect(tampered):
            pass
    # A bad start is answered with an error event and a policy close; the token is spent all the same.
    async with websockets.connect(session["ws_url"]) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 8000, "encoding": "pcm_s16le", "channels": 1}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error" and "16000" in error["message"]
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1008
    with pytest.raises(InvalidStatus):
        async with websockets.connect(session["ws_url"]):
            pass


async def test_test_call_needs_auth_and_an_agent_of_the_organisation(http: httpx.AsyncClient,
                                                                    browser_agent: SimLine) -> None:
    url = f"{browser_agent.backend_url}/api/v1/test-calls"
    assert (await http.post(url, json={"agent_id": browser_agent.agent_id})).status_code == 401
    resp = await http.post(url, headers=browser_agent.headers, json={"agent_id": "not-an-agent"})
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["path"] == "body.agent_id"


async def test_voices_are_listed_from_the_tts_server(http: httpx.AsyncClient, browser_agent: SimLine) -> None:
    url = f"{browser_agent.backend_url}/api/v1/voices"
    assert (await http.get(url)).status_code == 401
    resp = await http.get(url, headers=browser_agent.headers)
    assert resp.status_code == 200, resp.text
    voices = resp.json()
    assert voices and all(v["engine"] in ("piper", "xtts") and v["id"] and v["name"] for v in voices)
    assert any(v["id"] == "en_US-joe-medium" and v["engine"] == "piper" for v in voices), voices


async def test_voice_sample_is_a_wav_of_the_text(http: httpx.AsyncClient, browser_agent: SimLine) -> None:
    url = f"{browser_agent.backend_url}/api/v1/voices/sample"
    body = {"voice": "en_US-joe-medium", "engine": "piper", "text": "Hello from the sample.", "speed": 1.0}
    assert (await http.post(url, json=body)).status_code == 401
    resp = await http.post(url, headers=browser_agent.headers, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(resp.content)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        rate, frames = wav.getframerate(), wav.getnframes()
        samples = np.frombuffer(wav.readframes(frames), dtype=np.int16)
    assert 0.5 < frames / rate < 5.0
    assert active_seconds(samples, rate) > 0.4
    slow = await http.post(url, headers=browser_agent.headers, json={**body, "speed": 0.6})
    with wave.open(io.BytesIO(slow.content)) as wav:
        assert wav.getnframes() / wav.getframerate() > frames / rate * 1.2, "speed was not passed on"


async def test_voice_sample_rejects_bad_input_clearly(http: httpx.AsyncClient, browser_agent: SimLine) -> None:
    url = f"{browser_agent.backend_url}/api/v1/voices/sample"
    headers = browser_agent.headers
    too_long = await http.post(url, headers=headers, json={"voice": "en_US-joe-medium", "text": "a" * 301})
    assert too_long.status_code == 422 and too_long.json()["error"]["details"][0]["path"] == "body.text"
    unknown = await http.post(url, headers=headers, json={"voice": "no-such-voice", "text": "Hello."})
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["error"]["details"][0]["path"] == "body.voice"
    engine = await http.post(url, headers=headers, json={"voice": "en_US-joe-medium", "engine": "espeak",
                                                         "text": "Hello."})
    assert engine.status_code == 422 and engine.json()["error"]["details"][0]["path"] == "body.engine"


async def test_browser_serializer_takes_pcm_and_skips_garbage() -> None:
    """No servers: the serializer's own handling of what a browser (or anything else) sends up."""
    from pipecat.audio.dtmf.types import KeypadEntry
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        InputDTMFFrame,
        InterruptionFrame,
        OutputAudioRawFrame,
    )

    from voice_server.media.browser import BrowserSerializer, parse_browser_start
    from voice_server.media.playout import PlayoutTracker
    from voice_server.media.serializers import SerializerHooks, StartError

    start = json.dumps({"type": "start", "sample_rate": RATE, "encoding": "pcm_s16le", "channels": 1})
    info = parse_browser_start(start, "call-1")
    assert info.carrier == "browser" and info.in_sample_rate == info.out_sample_rate == RATE
    for bad in ("nope", "[]", json.dumps({"type": "start", "sample_rate": 48000, "encoding": "pcm_s16le"}),
                json.dumps({"type": "hangup"})):
        with pytest.raises(StartError):
            parse_browser_start(bad, "call-1")

    stops: list[str] = []
    errors: list[str] = []
    serializer = BrowserSerializer(info, PlayoutTracker(), SerializerHooks(on_stop=stops.append,
                                                                           on_protocol_error=errors.append))
    pcm = np.arange(320, dtype="<i2").tobytes()
    frame = await serializer.deserialize(pcm)
    assert isinstance(frame, InputAudioRawFrame) and frame.audio == pcm and frame.sample_rate == RATE
    assert serializer.caller_audio_s == pytest.approx(0.02)
    odd = await serializer.deserialize(pcm[:-1])
    assert isinstance(odd, InputAudioRawFrame) and len(odd.audio) == len(pcm) - 2
    for garbage in (b"", bytes(100_000), "{not json", json.dumps({"no": "type"}), "x" * 10_000):
        assert await serializer.deserialize(garbage) is None
    assert serializer.malformed == 5 + 1  # the odd-length frame counts too, but is still used
    assert await serializer.deserialize(json.dumps({"type": "something-new"})) is None
    assert serializer.unknown_events == {"something-new": 1} and not stops
    assert await serializer.deserialize(json.dumps({"type": "hangup"})) is None
    assert stops == ["caller_hangup"] and not errors

    out = await serializer.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=RATE, num_channels=1))
    assert out == pcm  # PCM16 little-endian, as is
    assert json.loads(str(await serializer.serialize(InterruptionFrame()))) == {"type": "clear"}

    # A keypress becomes Pipecat's InputDTMFFrame, as a carrier's DTMF event does; an invalid digit is dropped
    # with a message for the browser (its `error` event) and the call goes on.
    told: list[str] = []
    keypad = BrowserSerializer(info, PlayoutTracker(), SerializerHooks(on_stop=stops.append,
                                                                       on_client_error=told.append))
    for digit in "0123456789*#":
        pressed = await keypad.deserialize(json.dumps({"type": "dtmf", "digit": digit}))
        assert isinstance(pressed, InputDTMFFrame) and pressed.button == KeypadEntry(digit)
    for bad in ("A", "12", "", None, {"digit": "1"}):
        assert await keypad.deserialize(json.dumps({"type": "dtmf", "digit": bad})) is None
    assert await keypad.deserialize(json.dumps({"type": "dtmf"})) is None
    assert len(told) == 6 and told[0] == "invalid keypad digit 'A': send one of 0-9, * or #", told
    assert keypad.malformed == 6 and stops == ["caller_hangup"]

    for _ in range(60):  # a flood of garbage ends the call
        await serializer.deserialize(b"")
    assert errors and "malformed" in errors[0]
