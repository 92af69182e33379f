"""Webhook authenticity, media sockets without a valid token, unknown numbers and malformed media frames, against
the real voice server (and the backend behind it)."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from voicetest_helpers import VoiceServer, wait_for_call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voice_server.calls import inbound_call_id
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript, CarrierAccount, SimulatedCall

pytestmark = pytest.mark.timeout(180)


def _sim(voice: VoiceServer, line: SimLine, http: httpx.AsyncClient, *, account: CarrierAccount | None = None,
         to: str | None = None, turns: list[CallerTurn] | None = None, hangup_after_s: float | None = 0.5,
         max_duration_s: float = 30.0) -> SimulatedCall:
    url = f"{voice.url}/twilio/voice" if line.carrier == "twilio" else f"{voice.url}/vobiz/answer"
    return SimulatedCall(carrier=line.carrier, answer_url=url, account=account or line.account,
                         from_number="+14155550100", to_number=to or line.number, http=http,
                         script=CallScript(turns=turns or [], hangup_after_s=hangup_after_s,
                                           max_duration_s=max_duration_s))


@pytest.mark.parametrize("carrier", ["twilio", "vobiz"])
async def test_forged_signature_gets_403(carrier: str, voice_server: VoiceServer, twilio_line: SimLine,
                                         vobiz_line: SimLine, http: httpx.AsyncClient) -> None:
    line = twilio_line if carrier == "twilio" else vobiz_line
    forger = CarrierAccount(line.carrier, line.account.account_id, secrets.token_hex(16))
    resp = await _sim(voice_server, line, http, account=forger).post_answer(http)
    assert resp.status_code == 403
    assert "<Stream" not in resp.text


async def test_twilio_signature_over_a_changed_parameter_gets_403(voice_server: VoiceServer, twilio_line: SimLine,
                                                                  http: httpx.AsyncClient) -> None:
    sim = _sim(voice_server, twilio_line, http)
    params = sim._params()
    headers = sim.signed_headers(sim.answer_url, params)
    params["From"] = "+14155550111"  # the signature no longer matches the body
    resp = await http.post(sim.answer_url, data=params, headers=headers)
    assert resp.status_code == 403


async def test_vobiz_replayed_nonce_gets_403(voice_server: VoiceServer, vobiz_line: SimLine,
                                             http: httpx.AsyncClient) -> None:
    sim = _sim(voice_server, vobiz_line, http)
    params = sim._params()
    headers = sim.signed_headers(sim.answer_url, params)
    first = await http.post(sim.answer_url, data=params, headers=headers)
    assert first.status_code == 200 and "<Stream" in first.text
    replay = await http.post(sim.answer_url, data=params, headers=headers)
    assert replay.status_code == 403


@pytest.mark.parametrize("carrier", ["twilio", "vobiz"])
async def test_unknown_number_gets_a_polite_message_and_hangup(carrier: str, voice_server: VoiceServer,
                                                               twilio_line: SimLine, vobiz_line: SimLine,
                                                               http: httpx.AsyncClient) -> None:
    line = twilio_line if carrier == "twilio" else vobiz_line
    report = await _sim(voice_server, line, http, to="+14155550000" if carrier == "twilio" else "+919990000000").run()
    assert report.http_status == 200
    assert report.ended_by == "rejected"
    assert report.rejected_message and "not in service" in report.rejected_message
    verb = "<Say>" if carrier == "twilio" else "<Speak>"
    assert verb in report.answer_xml and "<Hangup" in report.answer_xml


async def test_vobiz_socket_without_a_valid_token_is_refused_at_the_handshake(voice_server: VoiceServer) -> None:
    ws_base = voice_server.url.replace("http://", "ws://")
    for token in ("not-a-token", "a.b.c"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{ws_base}/ws/vobiz/{token}", open_timeout=5):
                pass
        assert info.value.response.status_code == 403


async def _twilio_start_then_closed(voice: VoiceServer, params: dict[str, str], call_sid: str) -> int | None:
    ws_base = voice.url.replace("http://", "ws://")
    async with connect(f"{ws_base}/ws/twilio", open_timeout=5) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "0" * 32,
                                  "start": {"accountSid": "AC" + "0" * 32, "streamSid": "MZ" + "0" * 32,
                                            "callSid": call_sid, "tracks": ["inbound"], "customParameters": params,
                                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                            "channels": 1}}}))
        try:
            while True:
                message = await ws.recv()
                assert "media" not in str(message), "audio was sent on an unauthenticated socket"
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


async def test_twilio_socket_without_a_valid_token_is_closed(voice_server: VoiceServer, twilio_line: SimLine,
                                                             http: httpx.AsyncClient) -> None:
    assert await _twilio_start_then_closed(voice_server, {}, "CA" + "1" * 32) == 1008
    assert await _twilio_start_then_closed(voice_server, {"token": "forged.token.value"}, "CA" + "2" * 32) == 1008
    # A genuine token, but for another call.
    sim = _sim(voice_server, twilio_line, http)
    resp = await sim.post_answer(http)
    token = resp.text.split('name="token" value="')[1].split('"')[0]
    assert await _twilio_start_then_closed(voice_server, {"token": token}, "CA" + "3" * 32) == 1008


async def test_malformed_frames_do_not_break_the_call(voice_server: VoiceServer, twilio_line: SimLine,
                                                      fake_carrier: FakeCarrier, http: httpx.AsyncClient,
                                                      caller_audio: dict[str, bytes]) -> None:
    garbage: list[str | bytes] = [
        "not json", "{", "[]", '{"event": 42}', '{"event": "media"}', '{"event": "media", "media": "x"}',
        '{"event": "media", "media": {"payload": "***not base64***"}}', '{"event": "media", "media": {"payload": ""}}',
        '{"event": "dtmf", "dtmf": {"digit": "X"}}', '{"event": "mark"}', '{"event": "no-such-event"}',
        b"\x00\x01binary", json.dumps({"event": "media", "media": {"payload": "A" * 70000}}),
        '{"event": "start", "start": {}}',
    ]
    turns = [CallerTurn(raw=garbage, at_s=0.3, label="garbage"),
             CallerTurn(audio=caller_audio["parking"], gap_s=0.5, label="question")]
    sim = _sim(voice_server, twilio_line, http, turns=turns, hangup_after_s=0.5, max_duration_s=60)
    fake_carrier.register_inbound(sim)
    report = await sim.run()
    assert report.ended_by == "caller", report.ended_by
    question = next(a for a in report.answers if a.label == "question")
    assert question.first_audio is not None, "the call stopped working after malformed frames"


async def test_a_flood_of_malformed_frames_ends_the_call_with_the_reason(
        voice_server: VoiceServer, twilio_line: SimLine, fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> None:
    turns = [CallerTurn(raw=["{garbage"] * 600, at_s=0.5, label="flood")]
    sim = _sim(voice_server, twilio_line, http, turns=turns, hangup_after_s=None, max_duration_s=30)
    fake_carrier.register_inbound(sim)
    report = await sim.run()
    assert report.ended_by in ("carrier_hangup", "server_closed"), report.ended_by
    call = await wait_for_call(http, twilio_line, inbound_call_id("twilio", report.carrier_call_id),
                               lambda c: bool(c.get("end_reason")))
    assert call["end_reason"] == "error"
    assert "malformed" in (call.get("end_detail") or "")
