"""Data services and the backend going away in the middle of a call, for real: the FerretDB, MinIO and backend
processes of the outage stack (tests/reliability/conftest.py) are stopped and restarted on the same port and data
while a simulated caller talks to the agent (real speech servers). Nothing may be lost: afterwards the backend has
every turn, the end of the call and its recording.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from reliability_helpers import Figures, OutageStack, until, voice_status
from stack_helpers import synthesize
from voicetest_helpers import PHRASES, TEST_AGENT, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine, provision_line
from voice_server.testing.simulator import CallerTurn, CallReport, CallScript, SimulatedCall

pytestmark = pytest.mark.timeout(420)

# Patient with silence (the test decides when the call ends), short answers.
AGENT: dict[str, Any] = {**TEST_AGENT, "silence": {"reminder_after_s": 60, "max_reminders": 0}}


@pytest.fixture(scope="module")
def phrases(tts_url: str) -> dict[str, bytes]:
    return {key: synthesize(tts_url, PHRASES[key]) for key in ("hours", "parking", "book")}


async def outage_line(http: httpx.AsyncClient, stack: OutageStack, carrier: FakeCarrier) -> SimLine:
    return await provision_line(http, stack.backend_url, carrier="twilio", fake_carrier=carrier,
                                agent_config=AGENT)


def start_call(stack: OutageStack, line: SimLine, carrier: FakeCarrier, http: httpx.AsyncClient,
               turns: list[CallerTurn]) -> tuple[SimulatedCall, asyncio.Task[CallReport]]:
    sim = SimulatedCall(carrier="twilio", answer_url=f"{stack.voice_url}/twilio/voice", account=line.account,
                        from_number="+14155550100", to_number=line.number, http=http,
                        status_callback_url=f"{stack.voice_url}/twilio/status",
                        script=CallScript(turns=turns, hangup_after_s=1.0, max_duration_s=150))
    carrier.register_inbound(sim)
    return sim, asyncio.create_task(sim.run())


async def delivered(http: httpx.AsyncClient, stack: OutageStack) -> bool:
    status = await voice_status(http, stack.voice_url)
    return status["outbox_pending"] == 0 and status["recordings_pending"] == 0


async def _outbox_empty(http: httpx.AsyncClient, stack: OutageStack) -> bool:
    return (await voice_status(http, stack.voice_url))["outbox_pending"] == 0


def assert_nothing_lost(call: dict[str, Any], report: CallReport, caller_turns: int) -> None:
    speakers = [t["speaker"] for t in call["turns"]]
    assert speakers.count("caller") == caller_turns, call["turns"]
    # The greeting and one answer per question, each as the caller heard it.
    assert speakers.count("agent") >= 1 + len([a for a in report.answers if a.first_audio]), call["turns"]
    assert call["end_reason"] == "caller_hangup", (call["end_reason"], call.get("end_detail"))
    assert call["recording"] is not None


async def test_ferretdb_down_30s_mid_call(outage_stack: OutageStack, reliability_carrier: FakeCarrier,
                                          phrases: dict[str, bytes], http: httpx.AsyncClient) -> None:
    stack = outage_stack
    figures = Figures("FerretDB stopped 30 s mid-call")
    line = await outage_line(http, stack, reliability_carrier)
    turns = [CallerTurn(audio=phrases["hours"], label="hours"), CallerTurn(audio=phrases["parking"], gap_s=4.0),
             CallerTurn(audio=phrases["book"], gap_s=4.0)]
    sim, task = start_call(stack, line, reliability_carrier, http, turns)
    await until(lambda: sim.report.first_agent_audio is not None or task.done(), 60, "the greeting is heard")
    assert not task.done(), sim.report

    ferretdb = stack.process("ferretdb")
    ferretdb.stop()
    down_at = time.monotonic()
    max_pending = 0
    while time.monotonic() - down_at < 30:
        max_pending = max(max_pending, (await voice_status(http, stack.voice_url))["outbox_pending"])
        await asyncio.sleep(1.0)
    health = (await http.get(f"{stack.backend_url}/health", timeout=60)).json()
    assert health["mongo"] != "ok", health  # it really was down
    ferretdb.start()
    up_at = time.monotonic()
    answered_in_outage = [a for a in sim.report.answers if a.first_audio and down_at < a.first_audio < up_at]
    assert max_pending > 0, "events were not buffered"
    await until(lambda: _outbox_empty(http, stack), 120, "the buffered events are delivered after recovery")
    figures["backlog_delivered_after_s"] = round(time.monotonic() - up_at, 1)
    report = await asyncio.wait_for(task, 150)

    assert answered_in_outage, "the caller got no answer while FerretDB was down"
    await until(lambda: delivered(http, stack), 120, "the outbox drains after the call")
    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                               lambda c: bool(c.get("end_reason")) and c.get("recording") is not None, 90)
    assert_nothing_lost(call, report, caller_turns=3)
    figures["answers_during_outage"] = len(answered_in_outage)
    figures["max_events_buffered"] = max_pending
    figures["turns_stored"] = len(call["turns"])
    figures["events_lost"] = 0
    figures.show()


async def test_minio_down_recording_spooled_then_uploaded(outage_stack: OutageStack,
                                                          reliability_carrier: FakeCarrier,
                                                          phrases: dict[str, bytes], http: httpx.AsyncClient) -> None:
    stack = outage_stack
    figures = Figures("MinIO stopped during a call")
    line = await outage_line(http, stack, reliability_carrier)
    minio = stack.process("minio")
    minio.stop()
    try:
        sim, task = start_call(stack, line, reliability_carrier, http, [CallerTurn(audio=phrases["hours"])])
        report = await asyncio.wait_for(task, 120)
        assert report.answers and report.answers[0].first_audio, "no answer while MinIO was down"
        call_id = inbound_call_id("twilio", report.carrier_call_id)
        # The call and its transcript are stored; the recording waits on the voice server's disk.
        call = await wait_for_call(http, line, call_id, lambda c: bool(c.get("end_reason")), 60)
        assert call["recording"] is None
        await until(lambda: _spooled(http, stack, call_id), 30, "the recording is spooled")
        await asyncio.sleep(3.0)  # a few failed upload rounds
        assert (stack.spool / "recordings" / "pending" / f"{call_id}.wav").exists()
    finally:
        minio.start()
    up_at = time.monotonic()
    call = await wait_for_call(http, line, call_id, lambda c: c.get("recording") is not None, 90)
    figures["recording_stored_after_s"] = round(time.monotonic() - up_at, 1)
    audio = await http.get(f"{stack.backend_url}/api/v1/calls/{call_id}/recording/audio", headers=line.headers)
    assert audio.status_code == 200 and len(audio.content) > 1000
    assert not (stack.spool / "recordings" / "pending" / f"{call_id}.wav").exists()
    assert_nothing_lost(call, report, caller_turns=1)
    figures["recording_bytes"] = len(audio.content)
    figures["recordings_lost"] = 0
    figures.show()


async def _spooled(http: httpx.AsyncClient, stack: OutageStack, call_id: str) -> bool:
    return (await voice_status(http, stack.voice_url))["recordings_pending"] >= 1


async def test_backend_restart_mid_call(outage_stack: OutageStack, reliability_carrier: FakeCarrier,
                                        phrases: dict[str, bytes], http: httpx.AsyncClient) -> None:
    stack = outage_stack
    figures = Figures("backend restarted mid-call")
    line = await outage_line(http, stack, reliability_carrier)
    before = await voice_status(http, stack.voice_url)
    turns = [CallerTurn(audio=phrases["hours"]), CallerTurn(audio=phrases["parking"], gap_s=3.0)]
    sim, task = start_call(stack, line, reliability_carrier, http, turns)
    await until(lambda: sim.report.first_agent_audio is not None or task.done(), 60, "the greeting is heard")
    stack.backend.stop()
    down_at = time.monotonic()
    max_pending = 0
    while time.monotonic() - down_at < 10:
        max_pending = max(max_pending, (await voice_status(http, stack.voice_url))["outbox_pending"])
        await asyncio.sleep(1.0)
    stack.backend.start()
    figures["backend_down_s"] = round(time.monotonic() - down_at, 1)
    up_at = time.monotonic()
    assert max_pending > 0, "events were not buffered"
    await until(lambda: _outbox_empty(http, stack), 90, "the buffered events are delivered after the restart")
    figures["backlog_delivered_after_s"] = round(time.monotonic() - up_at, 1)
    figures["max_events_buffered"] = max_pending
    report = await asyncio.wait_for(task, 150)
    await until(lambda: delivered(http, stack), 90, "the outbox drains after the call")
    after = await voice_status(http, stack.voice_url)
    assert after["outbox_failures"] > before["outbox_failures"], "the voice server never had to retry"
    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                               lambda c: bool(c.get("end_reason")) and c.get("recording") is not None, 90)
    assert_nothing_lost(call, report, caller_turns=2)
    figures["failed_delivery_rounds"] = after["outbox_failures"] - before["outbox_failures"]
    figures["events_lost"] = 0
    figures.show()
