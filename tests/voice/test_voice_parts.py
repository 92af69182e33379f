"""The voice server's parts on their own: codecs, signatures, tokens, XML answers, serializers, the playout model,
the recorder, the event outbox, the recording spool and the carrier REST clients (against the fake carrier,
the one test double allowed)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import wave
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request, Response
from stack_helpers import LocalServer

from core.agent_config import AgentConfig
from core.call_events import CallEnded, CallEventBatch, CarrierCredentials, TurnRecorded
from core.g711 import ulaw_decode, ulaw_encode
from core.settings import S3Settings
from core.storage import ObjectStore
from pipelines.frames import PlaybackMarkFrame
from telephony.base import CarrierError, NonceCache, OutboundCallRequest
from telephony.base import SignatureResult as VobizSignatureResult
from telephony.call_token import CallClaims, CallTokenError, mint_call_token, verify_call_token
from telephony.numbers import to_e164
from telephony.twilio import TwilioRestClient, twilio_signature, twilio_signature_valid, twiml_stream
from telephony.vobiz import VobizRestClient, check_vobiz_signature, vobiz_dial, vobiz_stream
from voice_server.backend_client import BackendRejected, BackendUnavailable
from voice_server.codecs import l16_to_native, native_to_l16
from voice_server.media.playout import PlayoutTracker
from voice_server.media.serializers import (
    SerializerHooks,
    StartError,
    TwilioMediaSerializer,
    VobizMediaSerializer,
    parse_twilio_start,
    parse_vobiz_start,
)
from voice_server.outbox import EventOutbox
from voice_server.recording import DiskWriter, RecordingUploader, StereoRecorder, repair_wav_header
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.simulator import CallScript, CarrierAccount, SimulatedCall

pytestmark = pytest.mark.timeout(120)


# -- codecs, numbers ------------------------------------------------------------------------------------------

def test_ulaw_round_trip_keeps_the_signal() -> None:
    t = np.arange(8000) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    back = np.frombuffer(ulaw_decode(ulaw_encode(pcm.tobytes())), dtype=np.int16)
    assert len(ulaw_encode(pcm.tobytes())) == 8000
    assert np.corrcoef(pcm, back)[0, 1] > 0.999
    assert ulaw_decode(b"\xff\x7f") == np.array([0, 0], dtype=np.int16).tobytes()  # μ-law silence


def test_l16_network_byte_order_is_swapped() -> None:
    pcm = np.array([1, -2, 0x1234], dtype="<i2").tobytes()
    big = native_to_l16(pcm, "big")
    assert big == np.array([1, -2, 0x1234], dtype=">i2").tobytes()
    assert l16_to_native(big, "big") == pcm
    assert l16_to_native(pcm, "little") == pcm


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+14155550123", "US", "+14155550123"), ("14155550123", "US", "+14155550123"),
    ("02271234567", "IN", "+912271234567"), ("00442071234567", "US", "+442071234567"),
    ("client:alice", "US", "client:alice"),
])
def test_numbers_are_normalised_to_e164(raw: str, region: str, expected: str) -> None:
    assert to_e164(raw, region) == expected


# -- signatures and tokens ------------------------------------------------------------------------------------

def test_twilio_signature_matches_twilios_validator_with_and_without_port() -> None:
    params = {"CallSid": "CA1", "From": "+14155550100", "To": "+14155550199"}
    sig = twilio_signature("token", "https://voice.example.com/twilio/voice?call_id=x", params)
    assert twilio_signature_valid("token", "https://voice.example.com/twilio/voice?call_id=x", params, sig)
    assert twilio_signature_valid("token", "https://voice.example.com:443/twilio/voice?call_id=x", params, sig)
    assert not twilio_signature_valid("other", "https://voice.example.com/twilio/voice?call_id=x", params, sig)
    assert not twilio_signature_valid("token", "http://internal:8100/twilio/voice?call_id=x", params, sig)
    assert not twilio_signature_valid("token", "https://voice.example.com/twilio/voice", params, None)


def test_vobiz_v3_signature_is_hmac_sha256_of_base_url_dot_nonce() -> None:
    url, nonce, token = "https://voice.example.com/vobiz/answer?format=l16_8k", "12345678901234567890", "tok"
    expected = base64.b64encode(hmac.new(b"tok", f"https://voice.example.com/vobiz/answer.{nonce}".encode(),
                                         hashlib.sha256).digest()).decode()
    headers = {"x-vobiz-signature-v3": expected, "x-vobiz-signature-v3-nonce": nonce}
    nonces = NonceCache()
    assert check_vobiz_signature(token, url, headers, nonces) is VobizSignatureResult.VALID
    assert check_vobiz_signature(token, url, headers, nonces) is VobizSignatureResult.REPLAYED
    assert check_vobiz_signature("wrong", url, headers, None) is VobizSignatureResult.INVALID
    assert check_vobiz_signature(token, url, {}, nonces) is VobizSignatureResult.MISSING


def test_call_tokens_are_signed_short_and_expire() -> None:
    claims = CallClaims(call_id="c" * 32, carrier="twilio", carrier_call_id="CA" + "a" * 32, direction="inbound",
                        org_id="o" * 32, agent_id="a" * 32, from_number="+14155550100", to_number="+14155550199")
    token = mint_call_token("secret", claims, ttl_s=60)
    assert len("token") + len(token) < 500  # Twilio's <Parameter> limit
    assert verify_call_token("secret", token) == claims
    with pytest.raises(CallTokenError):
        verify_call_token("other-secret", token)
    with pytest.raises(CallTokenError):
        verify_call_token("secret", mint_call_token("secret", claims, ttl_s=-30))
    with pytest.raises(CallTokenError):
        verify_call_token("secret", token[:-3] + "abc")


# -- answer documents -----------------------------------------------------------------------------------------

def test_vobiz_answer_escapes_the_url_and_keeps_the_call_alive() -> None:
    body = vobiz_stream("wss://v.example.com/ws/vobiz/tok?a=1&b=2", "audio/x-l16;rate=16000",
                                "https://v.example.com/vobiz/stream-status?x=1&y=2")
    assert "&amp;" in body and "a=1&b" not in body
    stream = ET.fromstring(body).find("Stream")
    assert stream is not None and stream.text == "wss://v.example.com/ws/vobiz/tok?a=1&b=2"
    assert stream.get("bidirectional") == "true" and stream.get("keepCallAlive") == "true"
    assert stream.get("audioTrack") == "inbound" and stream.get("contentType") == "audio/x-l16;rate=16000"


def test_twiml_connect_stream_carries_the_token_as_a_parameter() -> None:
    root = ET.fromstring(twiml_stream("wss://v.example.com/ws/twilio", 'to"k<en', None))
    stream = root.find("Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://v.example.com/ws/twilio"
    param = stream.find("Parameter")
    assert param is not None and param.get("name") == "token" and param.get("value") == 'to"k<en'


# -- serializers ----------------------------------------------------------------------------------------------

def _vobiz_start(encoding: str, rate: int, nested: bool = True) -> dict[str, Any]:
    if nested:
        return {"sequenceNumber": 0, "event": "start", "extra_headers": "{}",
                "start": {"callId": "call-1", "streamId": "stream-1", "accountId": "1", "tracks": ["inbound"],
                          "mediaFormat": {"encoding": encoding, "sampleRate": rate}}}
    return {"event": "start", "streamId": "stream-1", "callId": "call-1",
            "contentType": f"{encoding};rate={rate}"}


def test_vobiz_start_nested_and_flat() -> None:
    for nested in (True, False):
        info = parse_vobiz_start(_vobiz_start("audio/x-l16", 16000, nested))
        assert (info.stream_id, info.carrier_call_id, info.in_encoding, info.in_sample_rate) == \
            ("stream-1", "call-1", "l16", 16000)
        assert (info.out_encoding, info.out_sample_rate) == ("l16", 16000)
    assert parse_vobiz_start(_vobiz_start("audio/x-mulaw", 8000)).in_encoding == "mulaw"
    with pytest.raises(StartError):
        parse_vobiz_start(_vobiz_start("audio/x-l16", 24000))
    with pytest.raises(StartError):
        parse_twilio_start({"event": "start", "start": {"streamSid": "MZ1"}})


async def test_vobiz_serializer_decodes_big_endian_l16_and_speaks_the_protocol() -> None:
    tracker = PlayoutTracker()
    info = parse_vobiz_start(_vobiz_start("audio/x-l16", 8000))
    ser = VobizMediaSerializer(info, tracker, SerializerHooks(), l16_byte_order="big")
    samples = np.array([100, -200, 3000], dtype=np.int16)
    payload = base64.b64encode(samples.astype(">i2").tobytes()).decode()
    frame = await ser.deserialize(json.dumps({"event": "media", "media": {"track": "inbound", "payload": payload}}))
    assert frame is not None and np.array_equal(np.frombuffer(frame.audio, np.int16), samples)

    from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame

    play = json.loads(await ser.serialize(OutputAudioRawFrame(samples.tobytes(), 8000, 1)) or "{}")
    assert play["event"] == "playAudio" and play["streamId"] == "stream-1"
    assert play["media"]["contentType"] == "audio/x-l16" and play["media"]["sampleRate"] == 8000
    assert base64.b64decode(play["media"]["payload"]) == samples.astype("<i2").tobytes()  # outbound little-endian
    assert json.loads(await ser.serialize(InterruptionFrame()) or "{}") == {"event": "clearAudio",
                                                                             "streamId": "stream-1"}
    played: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    mark = PlaybackMarkFrame(mark="end-1", played=played)
    assert json.loads(await ser.serialize(mark) or "{}") == {"event": "checkpoint", "streamId": "stream-1",
                                                              "name": "end-1"}
    tracker.add_mark("end-1", played)
    await ser.deserialize(json.dumps({"event": "playedStream", "name": "end-1"}))
    assert played.result() is True
    assert json.loads(ser.stop_message()) == {"event": "stop", "streamId": "stream-1"}


class _CallerAudio:
    """Collects what a recording would be fed."""

    def __init__(self) -> None:
        self.caller: list[bytes] = []

    def add_caller(self, pcm: bytes, sample_rate: int, at_s: float | None = None) -> None:
        self.caller.append(pcm)

    def add_agent(self, pcm: bytes, sample_rate: int, start_s: float) -> None:
        pass

    def drop_agent_after(self, t_s: float) -> None:
        pass


async def test_caller_audio_enters_the_pipeline_in_frames_of_caller_frame_ms_and_is_recorded_as_it_arrives() -> None:
    info = parse_twilio_start({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1"}})
    ser = TwilioMediaSerializer(info, PlayoutTracker(), SerializerHooks(), caller_frame_ms=40)
    sink = _CallerAudio()
    ser.audio_sink = sink
    pieces = [np.full(160, 1000 * (k + 1), np.int16).tobytes() for k in range(5)]  # five 20 ms frames at 8 kHz

    def media(pcm: bytes) -> str:
        return json.dumps({"event": "media", "media": {"track": "inbound",
                                                       "payload": base64.b64encode(ulaw_encode(pcm)).decode()}})

    frames = [await ser.deserialize(media(pcm)) for pcm in pieces]
    assert [f is not None for f in frames] == [False, True, False, True, False]
    decoded = [ulaw_decode(ulaw_encode(pcm)) for pcm in pieces]
    assert frames[1] is not None and frames[1].audio == decoded[0] + decoded[1]  # 40 ms, in order, nothing lost
    assert frames[3] is not None and frames[3].audio == decoded[2] + decoded[3]
    assert sink.caller == decoded  # the recording is fed every 20 ms, as the audio arrived
    plain = TwilioMediaSerializer(info, PlayoutTracker(), SerializerHooks())  # default: as the carrier sent it
    frame = await plain.deserialize(media(pieces[0]))
    assert frame is not None and frame.audio == decoded[0]


async def test_twilio_serializer_counts_malformed_frames_and_reports_a_flood() -> None:
    errors: list[str] = []
    stops: list[str] = []
    info = parse_twilio_start({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1"}})
    ser = TwilioMediaSerializer(info, PlayoutTracker(), SerializerHooks(on_stop=stops.append,
                                                                        on_protocol_error=errors.append))
    for bad in ("x", '{"event": 1}', '{"event":"media","media":{"payload":"??"}}', b"\x00"):
        assert await ser.deserialize(bad) is None
    assert ser.malformed == 4 and not errors
    for _ in range(60):
        await ser.deserialize("{")
    assert len(errors) == 1 and "malformed" in errors[0]
    digit = await ser.deserialize(json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}))
    assert digit is not None and digit.button.value == "5"
    await ser.deserialize(json.dumps({"event": "stop", "stop": {"callSid": "CA1"}}))
    assert stops == ["caller_hangup"]


# -- the playout model ----------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_playout_model_schedules_back_to_back_and_clears() -> None:
    clock = FakeClock()
    tracker = PlayoutTracker(t0=100.0, clock=clock)
    assert tracker.on_audio_sent(0.5) == 0.0
    assert tracker.on_audio_sent(0.5) == 0.5  # queued behind the first chunk
    clock.t = 100.2
    assert round(tracker.buffered_s(), 3) == 0.8
    loop = asyncio.get_running_loop()
    mark: asyncio.Future[bool] = loop.create_future()
    tracker.add_mark("m1", mark)
    assert tracker.on_clear() == pytest.approx(0.2)
    assert mark.result() is False  # cleared before it played
    assert tracker.on_mark_played("m1") is False  # Twilio's echo of a cleared mark means nothing
    assert tracker.buffered_s() == 0.0


# -- the recorder ---------------------------------------------------------------------------------------------

async def test_recording_is_stereo_aligned_and_drops_what_a_clear_removed(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = DiskWriter()
    rate = 8000
    rec = StereoRecorder(tmp_path / "call.wav", rate, writer, t0=100.0, clock=clock)
    tone = (np.ones(int(rate * 0.02)) * 5000).astype(np.int16).tobytes()
    # Agent audio scheduled from 0.5 s to 1.5 s, then a barge-in clear at 1.0 s.
    rec.add_agent((np.ones(rate) * 7000).astype(np.int16).tobytes(), rate, start_s=0.5)
    for i in range(100):  # 2 s of caller audio arriving in real time
        clock.t = 100.0 + (i + 1) * 0.02
        rec.add_caller(tone, rate, at_s=(i + 1) * 0.02)
        if i == 49:
            rec.drop_agent_after(1.0)
    result = await rec.close(end_s=2.0)
    writer.close()
    with wave.open(str(result.path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, rate)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    left, right = frames[0::2], frames[1::2]
    assert left.size == 2 * rate and np.all(left == 5000)
    assert np.all(right[: int(0.5 * rate)] == 0)
    assert np.all(right[int(0.5 * rate): rate] == 7000)
    assert np.all(right[rate:] == 0), "agent audio after the clear was never heard and must not be recorded"
    assert result.duration_s == pytest.approx(2.0)


def test_a_recording_left_by_a_crash_gets_its_header_repaired(tmp_path: Path) -> None:
    path = tmp_path / "orphan.wav"
    from voice_server.recording import wav_header

    path.write_bytes(wav_header(8000, 2, 0) + b"\x01\x00" * 1601)  # sizes never patched, one torn sample
    assert repair_wav_header(path, 8000) == 3200
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 800


# -- delivery: the event outbox and the recording spool --------------------------------------------------------

async def test_outbox_keeps_events_on_disk_until_the_backend_takes_them(tmp_path: Path) -> None:
    app = FastAPI()
    state = {"down": True, "received": []}

    @app.post("/events")
    async def events(request: Request) -> Response:
        if state["down"]:
            return Response(status_code=503)
        state["received"].extend(CallEventBatch.model_validate(await request.json()).events)
        return Response('{"accepted": 1, "duplicates": 0}', media_type="application/json")

    async with LocalServer(app) as server, httpx.AsyncClient() as http:
        async def send(batch: CallEventBatch) -> None:
            resp = await http.post(f"{server.url}/events", json=batch.model_dump(mode="json"))
            if resp.status_code >= 500:
                raise BackendUnavailable("down")
            if resp.status_code >= 400:
                raise BackendRejected(resp.status_code, resp.text)

        outbox = EventOutbox(tmp_path / "outbox", send, retry_max_s=0.2)
        await outbox.start()
        for i in range(3):
            outbox.emit(TurnRecorded(call_id="c1", turn_index=i, speaker="agent", text=f"t{i}", start_ms=0, end_ms=1))
        await asyncio.sleep(0.5)
        assert list((tmp_path / "outbox").glob("*.json")), "undelivered events must be on disk"
        await outbox.stop(drain_timeout=0.1)

        # A new process finds them and delivers them once the backend is back.
        state["down"] = False
        outbox2 = EventOutbox(tmp_path / "outbox", send, retry_max_s=0.2)
        await outbox2.start()
        outbox2.emit(CallEnded(call_id="c1", end_reason="caller_hangup", duration_s=1.0))
        assert await outbox2.flush(10)
        await outbox2.stop()
    assert [e.type for e in state["received"]] == ["call.turn"] * 3 + ["call.ended"]
    assert not list((tmp_path / "outbox").glob("*.json"))


async def test_recordings_wait_in_the_spool_while_minio_is_down(tmp_path: Path, data_services: dict[str, str]) -> None:
    real = ObjectStore(S3Settings())
    dead = ObjectStore(S3Settings(s3_endpoint="127.0.0.1:9"))  # nothing listens there
    stored: list[Any] = []
    uploader = RecordingUploader(dead, tmp_path, stored.append, retry_max_s=0.2)
    await uploader.start(set)
    wav = uploader.active_path("call-spool")
    from voice_server.recording import FinishedRecording, wav_header

    wav.write_bytes(wav_header(8000, 2, 3200) + b"\x00" * 3200)
    await uploader.submit("org-spool", "call-spool", FinishedRecording(wav, 8000, 0.1, 3244))
    await asyncio.sleep(1.0)
    assert not stored and (uploader.pending_dir / "call-spool.wav").exists(), "must stay in the spool"
    uploader._store = real  # MinIO is back
    assert await uploader.flush(15)
    await uploader.stop()
    assert stored and stored[0].key == "org-spool/call-spool/recording.wav"
    assert (await real.stat("org-spool/call-spool/recording.wav")) is not None
    assert not (uploader.pending_dir / "call-spool.wav").exists()


# -- carrier REST clients against the fake carrier -------------------------------------------------------------

@pytest.fixture
async def carrier_double() -> Any:
    fake = FakeCarrier([CarrierAccount("twilio", "AC" + "1" * 32, "tw-token"),
                        CarrierAccount("vobiz", "MA_TESTACCOUNT", "vb-token")])
    from voicectl.procs import free_port

    await fake.start(free_port())
    try:
        yield fake
    finally:
        await fake.stop()


def _register(fake: FakeCarrier, carrier: str, sid: str) -> None:
    account = next(a for (c, _), a in fake.accounts.items() if c == carrier)
    sim = SimulatedCall(carrier=carrier, answer_url="http://unused", account=account,  # type: ignore[arg-type]
                        from_number="+14155550100", to_number="+14155550199",
                        script=CallScript(),
                        carrier_call_id=sid)
    fake.register_inbound(sim)


async def test_twilio_client_hangs_up_transfers_and_places_calls(carrier_double: FakeCarrier) -> None:
    creds = CarrierCredentials(carrier="twilio", account_id="AC" + "1" * 32, auth_token="tw-token",
                               api_base_url=carrier_double.base_url)
    client = TwilioRestClient(creds)
    try:
        _register(carrier_double, "twilio", "CA" + "a" * 32)
        assert await client.hangup("CA" + "a" * 32) is True
        assert await client.hangup("CA" + "a" * 32) is False  # already over: 404 code 20404
        _register(carrier_double, "twilio", "CA" + "b" * 32)
        await client.transfer_blind("CA" + "b" * 32, "+14155550142", "+14155550199", None)
        assert carrier_double.calls["CA" + "b" * 32].transferred_to == "+14155550142"
        carrier_double.default_callee = ScriptedCallee(outcome="busy")
        placed = await client.create_call(OutboundCallRequest(to_number="+14155550177", from_number="+14155550199",
                                                              answer_url="http://127.0.0.1:9/answer"))
        assert placed.carrier_call_id.startswith("CA")
        wrong = TwilioRestClient(creds.model_copy(update={"auth_token": "nope"}))
        with pytest.raises(CarrierError) as err:
            await wrong.hangup("CA" + "c" * 32)
        assert err.value.status == 401
        await wrong.close()
    finally:
        await client.close()
    create = next(r for r in carrier_double.requests if r.path.endswith("/Calls.json"))
    assert create.body["To"] == "+14155550177" and create.body["Url"] == "http://127.0.0.1:9/answer"


async def test_vobiz_client_uses_exact_paths_and_auth_headers(carrier_double: FakeCarrier) -> None:
    creds = CarrierCredentials(carrier="vobiz", account_id="MA_TESTACCOUNT", auth_token="vb-token",
                               api_base_url=carrier_double.base_url)
    app = FastAPI()

    @app.post("/dial")
    async def dial() -> Response:
        return Response(vobiz_dial("+919876543210", "+911140000000"), media_type="application/xml")

    async with LocalServer(app) as xml_server, httpx.AsyncClient() as http:
        client = VobizRestClient(creds, http)
        _register(carrier_double, "vobiz", "uuid-1")
        assert await client.hangup("uuid-1") is True
        assert await client.hangup("uuid-1") is False
        _register(carrier_double, "vobiz", "uuid-2")
        await client.transfer_blind("uuid-2", "+919876543210", "+911140000000", f"{xml_server.url}/dial")
        assert carrier_double.calls["uuid-2"].transferred_to == "919876543210"
        carrier_double.default_callee.outcome = "no-answer"
        placed = await client.create_call(OutboundCallRequest(to_number="+919876543211",
                                                              from_number="+911140000000",
                                                              answer_url="http://127.0.0.1:9/answer"))
        assert placed.carrier_call_id
        lowercase = await http.delete(f"{carrier_double.base_url}/api/v1/account/MA_TESTACCOUNT/call/uuid-1/",
                                      headers={"X-Auth-ID": "MA_TESTACCOUNT", "X-Auth-Token": "vb-token"})
        assert lowercase.status_code == 401
    paths = [(r.method, r.path) for r in carrier_double.requests if r.carrier == "vobiz"]
    assert ("DELETE", "/api/v1/Account/MA_TESTACCOUNT/Call/uuid-1/") in paths
    assert ("POST", "/api/v1/Account/MA_TESTACCOUNT/Call/uuid-2/") in paths
    make = next(r for r in carrier_double.requests if r.path == "/api/v1/Account/MA_TESTACCOUNT/Call/")
    assert make.body["from"] == "911140000000" and make.body["answer_method"] == "POST"


# -- transfers (the session's carrier side; the LLM decides when) ------------------------------------------------

def _session_for(carrier: str, fake: FakeCarrier, voice_url: str, sid: str) -> Any:
    from types import SimpleNamespace

    from core.call_events import ResolvedAgent
    from telephony.call_token import CallClaims
    from telephony.registry import CarrierClients
    from voice_server.config import VoiceServerSettings
    from voice_server.media.serializers import StreamInfo
    from voice_server.session import CallSession

    account = next(a for (c, _), a in fake.accounts.items() if c == carrier)
    creds = CarrierCredentials(carrier=carrier, account_id=account.account_id,  # type: ignore[arg-type]
                               auth_token=account.auth_token, api_base_url=fake.base_url)
    settings = VoiceServerSettings(voice_public_base_url=voice_url,
                                   call_token_secret=os.environ["CALL_TOKEN_SECRET"])
    app = SimpleNamespace(settings=settings, carriers=CarrierClients(), warm_transfers={})
    agent = ResolvedAgent(org_id="o", agent_id="a", agent_version=1, agent_name="A", config=AgentConfig(),
                          phone_number="+14155550199", carrier_credentials=creds)
    claims = CallClaims(call_id=f"call-{sid}", carrier=carrier, carrier_call_id=sid,  # type: ignore[arg-type]
                        direction="inbound", org_id="o", agent_id="a", from_number="+14155550100",
                        to_number="+14155550199")
    info = StreamInfo(carrier=carrier, stream_id="s", carrier_call_id=sid,  # type: ignore[arg-type]
                      in_encoding="mulaw", in_sample_rate=8000, out_encoding="mulaw", out_sample_rate=8000)
    _register(fake, carrier, sid)
    return CallSession(app, claims, info, None, agent, {}, None)  # type: ignore[arg-type]


async def test_blind_and_warm_transfers_through_the_carrier_apis(carrier_double: FakeCarrier,
                                                                 voice_server: Any) -> None:
    from core.agent_config import TransferTarget

    blind = _session_for("twilio", carrier_double, voice_server.url, "CA" + "d" * 32)
    status = await blind.transfer(TransferTarget(name="Billing", phone_number="+14155550142"), "Please hold.", "")
    assert status == "transferring" and blind.end_reason == "transferred"
    assert carrier_double.calls["CA" + "d" * 32].transferred_to == "+14155550142"
    assert "<Dial callerId=\"+14155550199\">+14155550142</Dial>" in (
        carrier_double.calls["CA" + "d" * 32].redirect_twiml or "")

    warm = _session_for("twilio", carrier_double, voice_server.url, "CA" + "e" * 32)
    target = TransferTarget(name="Sales", phone_number="+14155550143", mode="warm")
    assert await warm.transfer(target, "Connecting you.", "Wants a quote for 20 seats.") == "transferring"
    caller = carrier_double.calls["CA" + "e" * 32]
    assert caller.transferred_to == f"conference:warm-call-{'CA' + 'e' * 32}"  # on hold in the conference
    human = next(c for c in carrier_double.calls.values() if c.to_number == "+14155550143")
    assert "Wants a quote for 20 seats." in (human.redirect_twiml or "")
    assert "startConferenceOnEnter=\"true\"" in (human.redirect_twiml or "")

    for _ in range(50):  # the human answers, hears the brief and enters the room: bridged with the caller
        if caller.bridged_with:
            break
        await asyncio.sleep(0.1)
    assert caller.bridged_with == human.sid and not caller.over

    vobiz = _session_for("vobiz", carrier_double, voice_server.url, "uuid-transfer")
    assert await vobiz.transfer(TransferTarget(name="Help", phone_number="+919876500000"), "Hold on.", "") == \
        "transferring"
    assert carrier_double.calls["uuid-transfer"].transferred_to == "919876500000"
    for session in (blind, warm, vobiz):
        await session.app.carriers.close()


async def test_a_vobiz_warm_transfer_holds_briefs_and_bridges_in_a_conference(carrier_double: FakeCarrier,
                                                                              voice_server: Any) -> None:
    """Reference R3: the caller is moved (Transfer API) into a <Conference> room; the human's own call speaks the
    brief, then enters the room, which bridges them."""
    from core.agent_config import TransferTarget

    session = _session_for("vobiz", carrier_double, voice_server.url, "uuid-warm")
    target = TransferTarget(name="Sales", phone_number="+919876500001", mode="warm")
    assert await session.transfer(target, "Connecting you.", "Wants a quote for 20 seats.") == "transferring"
    caller = carrier_double.calls["uuid-warm"]
    assert caller.transferred_to == "conference:warm-call-uuid-warm", caller.redirect_twiml
    assert 'startConferenceOnEnter="false"' in (caller.redirect_twiml or "") and not caller.over
    human = next(c for c in carrier_double.calls.values() if c.to_number == "+919876500001")
    for _ in range(50):
        if caller.bridged_with:
            break
        await asyncio.sleep(0.1)
    assert caller.bridged_with == human.sid, (human.status, human.redirect_twiml)
    assert human.spoken_message == "Incoming transfer from the AI assistant. Wants a quote for 20 seats."
    assert 'stayAlone="true"' in (human.redirect_twiml or "")
    assert session.end_reason == "transferred" and session.end_detail == "warm transfer to Sales"
    await session.app.carriers.close()


async def test_observer_hub_passes_audio_only_from_a_turn_end_to_the_first_audio_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """OBSERVERS_SKIP_AUDIO: the latency observer still gets the answer's first TTS audio and first sent audio;
    caller audio and the audio between turns never reach the observers' queues."""
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        OutputAudioRawFrame,
        TTSAudioRawFrame,
        UserStoppedSpeakingFrame,
    )
    from pipecat.observers.base_observer import FrameProcessed, FramePushed
    from pipecat.pipeline.worker_observer import WorkerObserver
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.transports.base_output import BaseOutputTransport
    from pipecat.transports.base_transport import TransportParams

    from pipelines.call_worker import TurnAudioWorkerObserver

    queued: list[Any] = []

    async def queue(_hub: WorkerObserver, data: Any) -> None:
        queued.append(data.frame)

    monkeypatch.setattr(WorkerObserver, "on_push_frame", queue)
    monkeypatch.setattr(WorkerObserver, "on_process_frame", queue)
    hub = TurnAudioWorkerObserver(observers=[])
    tts, out = FrameProcessor(), BaseOutputTransport(TransportParams())

    async def push(source: FrameProcessor, frame: Any) -> None:
        await hub.on_push_frame(FramePushed(source=source, destination=source, frame=frame,
                                            direction=FrameDirection.DOWNSTREAM, timestamp=0))

    caller = InputAudioRawFrame(b"\x00" * 640, 8000, 1)
    before = [TTSAudioRawFrame(b"\x00" * 640, 8000, 1), OutputAudioRawFrame(b"\x00" * 640, 8000, 1)]
    stop = UserStoppedSpeakingFrame()
    first_tts, second_tts = TTSAudioRawFrame(b"\x00" * 640, 8000, 1), TTSAudioRawFrame(b"\x00" * 640, 8000, 1)
    first_sent, later_sent = OutputAudioRawFrame(b"\x00" * 640, 8000, 1), OutputAudioRawFrame(b"\x00" * 640, 8000, 1)
    await push(out, caller)
    await push(tts, before[0])
    await push(out, before[1])
    await push(out, stop)
    await push(out, caller)
    await push(tts, first_tts)
    await push(tts, second_tts)
    await push(out, first_sent)
    await push(out, later_sent)
    await hub.on_process_frame(FrameProcessed(processor=out, frame=first_sent, direction=FrameDirection.DOWNSTREAM,
                                              timestamp=0))
    await hub.on_process_frame(FrameProcessed(processor=out, frame=stop, direction=FrameDirection.DOWNSTREAM,
                                              timestamp=0))
    assert queued == [stop, first_tts, second_tts, first_sent, stop]
