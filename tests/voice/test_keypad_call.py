"""collect_digits on a real call: the LLM asks for the booking number, the caller types it on the keypad (DTMF
frames from the telephony simulator), the tool gets it; marked sensitive, it never appears in clear in the
transcript, the tool event or the voice server's log."""

from __future__ import annotations

import httpx
from stack_helpers import synthesize
from voicetest_helpers import Simulate, VoiceServer, ended_with_recording, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

SECRET = "482913"


async def test_sensitive_digits_typed_on_the_keypad_reach_the_tool_masked(
        simulate: Simulate, twilio_line_with, http: httpx.AsyncClient, tts_url: str,  # type: ignore[no-untyped-def]
        voice_server: VoiceServer) -> None:
    line: SimLine = await twilio_line_with(
        system_prompt="You look up bookings. Always collect the booking number with collect_digits.",
        llm={"max_tokens": 40, "temperature": 0.0, "tool_choice": "collect_digits"},
        collect_digits={"max_digits": 6, "end_key": "#", "timeout_s": 40, "sensitive": True},
        silence={"reminder_after_s": 30.0, "max_reminders": 0})
    turns = [CallerTurn(audio=synthesize(tts_url, "I want to check my booking."), gap_s=0.5, label="ask"),
             # The agent asks silently (a tool call, no words), so the keys go at a time on the call's timeline
             # well after the request rather than "after the agent's reply".
             CallerTurn(dtmf=SECRET + "#", at_s=18.0, label="keys")]
    report = await simulate(line, CallScript(turns=turns, hangup_after_s=2.0, max_duration_s=45))

    call_id = inbound_call_id("twilio", report.carrier_call_id)
    call = await wait_for_call(http, line, call_id, ended_with_recording)
    tools = [t for t in call["tools"] if t["name"] == "collect_digits"]
    assert tools and tools[0]["ok"] and tools[0]["detail"] == "6 digits by keypad: ••••••", [(t["speaker"], t["text"], t["start_ms"]) for t in call["turns"]]
    texts = [t["text"] for t in call["turns"]]
    assert "[DTMF ••••••]" in texts, texts
    assert all(SECRET not in t for t in texts) and all(SECRET not in t["detail"] for t in call["tools"])
    log = voice_server.proc.log_file.read_text(errors="replace")
    assert "collect_digits" in log or "call" in log  # the log is there and was written
    assert SECRET not in log
