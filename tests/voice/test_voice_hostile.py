"""Webhook authenticity, media sockets without a valid token, unknown numbers and malformed media frames, against
the real voice server (and the backend behind it)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_helpers import http_routes
from voicetest_helpers import VoiceServer, wait_for_call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.service_auth import mint_service_token
from voice_server.answering import inbound_call_id
from voice_server.main import create_app as create_voice_app
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallReport, CallScript, CarrierAccount, SimulatedCall

pytestmark = pytest.mark.timeout(180)


def _sim(voice: VoiceServer, line: SimLine, http: httpx.AsyncClient, *, account: CarrierAccount | None = None,
         to: str | None = None, turns: list[CallerTurn] | None = None, hangup_after_s: float | None = 0.5,
         max_duration_s: float = 30.0) -> SimulatedCall:
    url = f"{voice.url}/twilio/voice" if line.carrier == "twilio" else f"{voice.url}/vobiz/answer"
    return SimulatedCall(carrier=line.carrier, answer_url=url, account=account or line.account,
                         from_number="+14155550100", to_number=to or line.number, http=http,
                         script=CallScript(turns=turns or [], hangup_after_s=hangup_after_s,
                                           max_duration_s=max_duration_s))


async def _still_answers(sim: SimulatedCall, fake_carrier: FakeCarrier, after: str) -> CallReport:
    """Runs a call whose script sends something hostile, then the question: the caller hangs up normally and the
    question was answered."""
    fake_carrier.register_inbound(sim)
    report = await sim.run()
    assert report.ended_by == "caller", report.ended_by
    question = next(a for a in report.answers if a.label == "question")
    assert question.first_audio is not None, f"the call stopped answering after {after}"
    return report


async def _ended_by_voice_server(sim: SimulatedCall, line: SimLine, fake_carrier: FakeCarrier,
                                 http: httpx.AsyncClient) -> dict[str, Any]:
    """Runs a call the voice server must end itself; returns the stored call once it has an end reason."""
    fake_carrier.register_inbound(sim)
    report = await sim.run()
    assert report.ended_by in ("carrier_hangup", "server_closed"), report.ended_by
    call: dict[str, Any] = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                                               lambda c: bool(c.get("end_reason")))
    return call


def _then_question(raw: list[str | bytes], label: str, caller_audio: dict[str, bytes]) -> list[CallerTurn]:
    return [CallerTurn(raw=raw, at_s=0.3, label=label),
            CallerTurn(audio=caller_audio["parking"], gap_s=0.5, label="question")]


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
async def test_unknown_number_is_refused(carrier: str, voice_server: VoiceServer, twilio_line: SimLine,
                                         vobiz_line: SimLine, http: httpx.AsyncClient) -> None:
    """No organisation has verified the number, so there are no credentials to check the signature against: the
    webhook fails closed (issue 16; tests/security/test_carrier_webhooks.py), whoever signed it."""
    line = twilio_line if carrier == "twilio" else vobiz_line
    report = await _sim(voice_server, line, http, to="+14155550000" if carrier == "twilio" else "+919990000000").run()
    assert report.http_status == 403


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
    sim = _sim(voice_server, twilio_line, http, turns=_then_question(garbage, "garbage", caller_audio),
               hangup_after_s=0.5, max_duration_s=60)
    await _still_answers(sim, fake_carrier, "malformed frames")


async def test_a_flood_of_malformed_frames_ends_the_call_with_the_reason(
        voice_server: VoiceServer, twilio_line: SimLine, fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> None:
    turns = [CallerTurn(raw=["{garbage"] * 600, at_s=0.5, label="flood")]
    sim = _sim(voice_server, twilio_line, http, turns=turns, hangup_after_s=None, max_duration_s=30)
    call = await _ended_by_voice_server(sim, twilio_line, fake_carrier, http)
    assert call["end_reason"] == "error"
    assert "malformed" in (call.get("end_detail") or "")


# --- Frames: huge, out of order, twice, Vobiz's own format; webhooks: missing fields, oversized; internal routes ---

HUGE_FRAME = 10 * 1024 * 1024  # 10x the voice server's --ws-max-size (1 MiB)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _voice_pid(voice: VoiceServer) -> int:
    assert voice.proc.proc is not None
    return voice.proc.proc.pid


async def _close_code_after(voice: VoiceServer, path: str, frames: list[str | bytes]) -> int | None:
    """Sends `frames` on a fresh media socket and returns the close code the server sent (None: it never closed)."""
    ws_base = voice.url.replace("http://", "ws://")
    async with connect(f"{ws_base}{path}", open_timeout=10, max_size=2 ** 20) as ws:
        try:
            for frame in frames:
                await ws.send(frame)
            while True:
                message = await asyncio.wait_for(ws.recv(), 30)
                assert "media" not in str(message), "audio was sent before a valid start"
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


async def test_a_10_mb_frame_is_closed_with_1009_without_memory_growth(voice_server: VoiceServer,
                                                                       http: httpx.AsyncClient) -> None:
    pid = _voice_pid(voice_server)
    before = _rss_mib(pid)
    for frame in ("{" + "A" * HUGE_FRAME, b"\x00" * HUGE_FRAME, json.dumps({"event": "media", "media": {
            "payload": "A" * HUGE_FRAME}})):
        assert await _close_code_after(voice_server, "/ws/twilio", [frame]) == 1009
    grown = _rss_mib(pid) - before
    assert grown < 64, f"voice server RSS grew {grown:.0f} MiB after three 10 MiB frames"
    assert (await http.get(f"{voice_server.url}/health")).status_code == 200


async def test_a_10_mb_frame_mid_call_ends_that_call_with_a_reason(
        voice_server: VoiceServer, twilio_line: SimLine, fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> None:
    turns = [CallerTurn(raw=[json.dumps({"event": "media", "media": {"payload": "A" * HUGE_FRAME}})], at_s=0.5,
                        label="huge")]
    sim = _sim(voice_server, twilio_line, http, turns=turns, hangup_after_s=None, max_duration_s=30)
    call = await _ended_by_voice_server(sim, twilio_line, fake_carrier, http)
    assert call["end_reason"], call
    assert (await http.get(f"{voice_server.url}/health")).status_code == 200


async def test_media_before_start_is_refused(voice_server: VoiceServer) -> None:
    media = json.dumps({"event": "media", "streamSid": "MZ" + "0" * 32,
                        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "//////8="}})
    assert await _close_code_after(voice_server, "/ws/twilio", [media] * 6) == 1008
    # Invalid JSON or an oversized text before `start` is refused at once, too.
    assert await _close_code_after(voice_server, "/ws/twilio", ["not json"]) == 1008
    assert await _close_code_after(voice_server, "/ws/twilio", ['{"event": "connected"}', "x" * 70000]) == 1008


async def test_a_second_start_mid_call_is_ignored(voice_server: VoiceServer, twilio_line: SimLine,
                                                  fake_carrier: FakeCarrier, http: httpx.AsyncClient,
                                                  caller_audio: dict[str, bytes]) -> None:
    other_sid = "CA" + secrets.token_hex(16)
    second_start = json.dumps({"event": "start", "sequenceNumber": "2", "streamSid": "MZ" + "9" * 32,
                               "start": {"accountSid": twilio_line.account.account_id, "streamSid": "MZ" + "9" * 32,
                                         "callSid": other_sid, "tracks": ["inbound"], "customParameters": {},
                                         "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                         "channels": 1}}})
    sim = _sim(voice_server, twilio_line, http, turns=_then_question([second_start, second_start], "restart",
                                                                     caller_audio),
               hangup_after_s=0.5, max_duration_s=60)
    report = await _still_answers(sim, fake_carrier, "a second start")
    await wait_for_call(http, twilio_line, inbound_call_id("twilio", report.carrier_call_id),
                        lambda c: bool(c.get("end_reason")))
    assert await twilio_line.call_detail(http, inbound_call_id("twilio", other_sid)) is None


async def test_malformed_vobiz_frames_do_not_break_the_call(voice_server: VoiceServer, vobiz_line: SimLine,
                                                            fake_carrier: FakeCarrier, http: httpx.AsyncClient,
                                                            caller_audio: dict[str, bytes]) -> None:
    garbage: list[str | bytes] = [
        "not json", "{", "null", '"media"', '{"event": null}', '{"event": "media"}',
        '{"event": "media", "media": {"payload": "***not base64***"}}',
        '{"event": "media", "media": {"track": "inbound", "payload": "A"}}',
        '{"event": "media", "media": {"payload": 12345}}', '{"event": "playAudio", "media": {"payload": "AAAA"}}',
        '{"event": "checkpoint"}', '{"event": "clearedAudio"}', '{"event": "dtmf", "dtmf": {}}',
        '{"event": "start", "start": {"callId": "x"}}', '{"event": "no-such-event", "x": [1, 2, 3]}',
        b"\xff\xfe binary", json.dumps({"event": "media", "media": {"payload": "QUFB" * 50000}}),
    ]
    url = f"{voice_server.url}/vobiz/answer"
    sim = SimulatedCall(carrier="vobiz", answer_url=url, account=vobiz_line.account, from_number="+14155550100",
                        to_number=vobiz_line.number, http=http, status_callback_url=f"{voice_server.url}/vobiz/hangup",
                        script=CallScript(turns=_then_question(garbage, "garbage", caller_audio), hangup_after_s=0.5,
                                          max_duration_s=60))
    await _still_answers(sim, fake_carrier, "malformed Vobiz frames")


@pytest.mark.parametrize("carrier", ["twilio", "vobiz"])
async def test_signed_webhooks_missing_their_call_id_get_400(carrier: str, voice_server: VoiceServer,
                                                             twilio_line: SimLine, vobiz_line: SimLine,
                                                             http: httpx.AsyncClient) -> None:
    line = twilio_line if carrier == "twilio" else vobiz_line
    sim = _sim(voice_server, line, http)
    id_field = "CallSid" if carrier == "twilio" else "CallUUID"
    paths = ["/twilio/voice", "/twilio/status"] if carrier == "twilio" else ["/vobiz/answer", "/vobiz/hangup"]
    for path in paths:
        url = f"{voice_server.url}{path}"
        for params in ({k: v for k, v in sim._params().items() if k != id_field}, {}):
            resp = await http.post(url, data=params, headers=sim.signed_headers(url, params))
            assert resp.status_code == 400, (path, params, resp.status_code, resp.text)
            assert id_field in resp.text
            assert "<Stream" not in resp.text


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/status", "/vobiz/answer", "/vobiz/hangup"])
async def test_an_oversized_webhook_body_gets_413(path: str, voice_server: VoiceServer,
                                                  http: httpx.AsyncClient) -> None:
    pid = _voice_pid(voice_server)
    before = _rss_mib(pid)
    body = "CallSid=CA123&From=%2B14155550100&Junk=" + "A" * HUGE_FRAME
    resp = await http.post(f"{voice_server.url}{path}", content=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413, (resp.status_code, resp.text[:200])

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"A" * (1024 * 1024)

    chunked = await http.post(f"{voice_server.url}{path}", content=chunks(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413
    assert _rss_mib(pid) - before < 64
    assert (await http.get(f"{voice_server.url}/health")).status_code == 200


async def test_every_voice_server_internal_route_needs_a_service_token(voice_server: VoiceServer,
                                                                       http: httpx.AsyncClient) -> None:
    """Enumerated from the voice server app's routes: a route added later under /internal is covered too."""
    routes = [(method, re.sub(r"{[^}]+}", "x", path)) for method, path, tags in http_routes(create_voice_app())
              if "internal" in tags or "/internal/" in path]
    assert len(routes) >= 3, routes
    secret = os.environ["SERVICE_TOKEN_SECRET"]
    good = mint_service_token(secret, "backend")
    wrong = mint_service_token("not-the-service-secret-" + secrets.token_hex(8), "backend")
    header, claims, _ = good.split(".")
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=") + f".{claims}."
    failures = []
    for method, path in routes:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Bearer {none_alg}"},
                        {"Authorization": "Bearer"}, {"Authorization": good}, {"X-API-Key": good}):
            resp = await http.request(method, f"{voice_server.url}{path}", json={}, headers=headers)
            if resp.status_code not in (401, 403):
                failures.append(f"{method} {path} with {headers}: {resp.status_code}")
    assert not failures, "\n".join(failures)
    # The right token gets through (so the refusals above are about the token, not the route).
    ok = await http.get(f"{voice_server.url}/internal/v1/status", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200, ok.text


async def test_a_burst_of_media_faster_than_real_time_does_not_break_the_call(
        voice_server: VoiceServer, twilio_line: SimLine, fake_carrier: FakeCarrier, http: httpx.AsyncClient,
        caller_audio: dict[str, bytes]) -> None:
    """30 s of (silent) caller audio sent at once, as a misbehaving carrier or a replay might: the call takes it and
    still answers the next question; the server's memory does not balloon."""
    silence = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of μ-law silence
    burst = [json.dumps({"event": "media", "sequenceNumber": str(i), "streamSid": "MZ" + "0" * 32,
                         "media": {"track": "inbound", "chunk": str(i), "timestamp": str(i * 20), "payload": silence}})
             for i in range(1500)]
    pid = _voice_pid(voice_server)
    before = _rss_mib(pid)
    sim = _sim(voice_server, twilio_line, http, turns=_then_question(burst, "burst", caller_audio),
               hangup_after_s=0.5, max_duration_s=90)
    await _still_answers(sim, fake_carrier, "a burst of media")
    assert _rss_mib(pid) - before < 128
