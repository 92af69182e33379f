"""In-call voicemail detection on real outbound calls (dialer path through the fake carrier): the agent's greeting
is held while pipecat's VoicemailDetector decides; a voicemail greeting gets the configured message after its beep
(or, with no beep, after the quiet), then the hang-up; a person gets the held greeting and the call goes on.
The carrier's AMD verdict (Twilio AsyncAmdStatusCallback to the voice server's /twilio/amd) decides when it comes
first, even for a greeting whose words alone would pass for a person."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from stack_helpers import synthesize
from voicetest_helpers import VoiceServer, place_twilio_outbound

from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

MESSAGE = "Hi, this is Test Clinic about your appointment. Please call us back. Goodbye!"
VOICEMAIL = "Hi, you have reached Sam. I can't come to the phone right now. Please leave a message after the tone."


def _beep() -> bytes:
    t = np.arange(int(8000 * 0.5)) / 8000
    pcm = (9000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    return (np.zeros(4000, dtype="<i2").tobytes() + pcm.tobytes())


async def _outbound(http: httpx.AsyncClient, line: SimLine, fake: FakeCarrier, voice_server: VoiceServer,
                    callee: str, answer: bytes, amd: str | None = None) -> dict:  # type: ignore[type-arg]
    return await place_twilio_outbound(http, line, fake, voice_server, callee, ScriptedCallee(
        outcome="voicemail" if amd else "human", answered_by=amd or "human", amd_delay_s=2.0,
        script=CallScript(turns=[CallerTurn(audio=answer, at_s=0.6, label="answer")], hangup_after_s=None,
                          max_duration_s=40)), amd=bool(amd))


@pytest.mark.parametrize(("callee", "beep"), [("+14155559801", True), ("+14155559802", False)])
async def test_a_voicemail_gets_the_message_then_the_hang_up(
        voice_server: VoiceServer, twilio_line_with, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str, callee: str, beep: bool) -> None:
    line: SimLine = await twilio_line_with(voicemail={"detect_in_call": True, "message": MESSAGE},
                                           silence={"reminder_after_s": 30.0, "max_reminders": 0})
    answer = synthesize(tts_url, VOICEMAIL) + (_beep() if beep else b"")
    call = await _outbound(http, line, fake_carrier, voice_server, callee, answer)
    assert call["end_reason"] == "voicemail", (call["end_reason"], call["turns"])
    agent = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent == [MESSAGE], agent  # the held greeting was never played to the machine


@pytest.mark.parametrize(("callee", "answer"), [
    ("+14155559803", "Hello? Who is this?"),
    ("+14155559805", "Hello?"),  # a short answer: decided a person after the short quiet (quick_person_silence_s)
])
async def test_a_person_gets_the_held_greeting(
        voice_server: VoiceServer, twilio_line_with, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str, callee: str, answer: str) -> None:
    line: SimLine = await twilio_line_with(voicemail={"detect_in_call": True, "message": MESSAGE})
    call = await _outbound(http, line, fake_carrier, voice_server, callee, synthesize(tts_url, answer))
    assert call["end_reason"] != "voicemail"
    agent = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent and agent[0].startswith("Hello and thank you for calling Test Clinic"), agent


async def test_the_carriers_machine_verdict_decides_when_it_comes_first(
        voice_server: VoiceServer, twilio_line_with, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    """No voicemail cue and no beep in the words ("This is Sam Miller ..."): alone they would pass for a person. The
    carrier's AnsweredBy=machine_start (2 s after the answer, while the greeting still plays) decides voicemail,
    and the message is left after the quiet. The greeting has no pause in its first words: a short opening and a
    pause would be decided "person" by the quick rule before the carrier's verdict came (it decides when it comes
    first)."""
    line: SimLine = await twilio_line_with(voicemail={"detect_in_call": True, "message": MESSAGE},
                                           silence={"reminder_after_s": 30.0, "max_reminders": 0})
    answer = synthesize(tts_url, "This is Sam Miller from Portland in Oregon speaking to you on this fine and sunny day.")
    call = await _outbound(http, line, fake_carrier, voice_server, "+14155559804", answer, amd="machine_start")
    assert call["end_reason"] == "voicemail", (call["end_reason"], call["turns"])
    assert "carrier machine_start" in (call.get("end_detail") or ""), call.get("end_detail")
    agent = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent == [MESSAGE], agent
