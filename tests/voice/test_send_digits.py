"""send_digits on real calls, the carrier's way: Vobiz plays the tones through its REST DTMF API (the fake carrier
records them), Twilio has no REST mechanism for a live stream, so the tones go in-band in the stream's audio
(the caller hears them: both DTMF frequencies of the key are in what the simulator received, and the fake
carrier, standing for Twilio's network, decodes them to the very digits pressed, and a simulated phone menu
answers them)."""

from __future__ import annotations

import httpx
import numpy as np
from stack_helpers import synthesize
from voicetest_helpers import (
    Simulate,
    VoiceServer,
    ended_with_recording,
    place_twilio_outbound,
    wait_for_call,
    words_heard,
)

from voice_server.answering import inbound_call_id
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

_ROWS, _COLS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
_KEYS = ("123A", "456B", "789C", "*0#D")

# 60 tokens: SmolLM2 sometimes runs the digits on to the schema's 32; cut at 30 tokens its arguments were not JSON,
# and no key was pressed.
PRESS_AGENT = {
    "system_prompt": "You work a phone menu for the caller. Press 1 for bookings.",
    "llm": {"max_tokens": 60, "temperature": 0.0, "tool_choice": "send_digits"},
    "enable_send_digits": True, "enable_end_call": False,
    "silence": {"reminder_after_s": 30.0, "max_reminders": 0},
}


def _tones_heard(pcm: bytes, rate: int) -> set[str]:
    """Keys whose two DTMF frequencies stand out together in some 50 ms window of the audio."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    window = rate // 20
    freqs = np.fft.rfftfreq(window, 1 / rate)
    keys: set[str] = set()
    for start in range(0, len(samples) - window, window):
        spectrum = np.abs(np.fft.rfft(samples[start:start + window] * np.hanning(window)))
        if spectrum.max() < 1000:
            continue

        def level(f: int, spectrum: np.ndarray = spectrum) -> float:
            return float(spectrum[np.abs(freqs - f) < 25].max())

        row = max(range(4), key=lambda i: level(_ROWS[i]))
        col = max(range(4), key=lambda i: level(_COLS[i]))
        if min(level(_ROWS[row]), level(_COLS[col])) > 0.3 * spectrum.max():
            keys.add(_KEYS[row][col])
    return keys


async def _call(simulate: Simulate, line: SimLine, tts_url: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    turns = [CallerTurn(audio=synthesize(tts_url, "Please book me in."), gap_s=0.5, label="ask")]
    # The caller hangs up once the agent's answer (the tones, and what it says after them) is over. A fixed 20 s
    # call cut off long runs: the tones start ~9 s in, each key takes 0.5 s (Pipecat's 0.3 s tone and 0.2 s gap),
    # and SmolLM2 may press the schema's 32 keys; such a run was then not all heard, and the test failed in CI.
    report = await simulate(line, CallScript(turns=turns, hangup_after_s=1.5, max_duration_s=45))
    return report.carrier_call_id, {"report": report}


async def test_vobiz_sends_keypad_tones_through_its_dtmf_api(
        simulate: Simulate, make_vobiz_line, fake_carrier: FakeCarrier, http: httpx.AsyncClient,  # type: ignore[no-untyped-def]
        tts_url: str) -> None:
    line: SimLine = await make_vobiz_line(**PRESS_AGENT)
    sid, _ = await _call(simulate, line, tts_url)
    fake = next(c for c in fake_carrier.calls.values() if c.sid == sid)
    assert fake.digits_sent and all(d in "0123456789*#" for d in "".join(fake.digits_sent)), fake.digits_sent
    call = await wait_for_call(http, line, inbound_call_id("vobiz", sid), ended_with_recording)
    sent = [t for t in call["tools"] if t["name"] == "send_digits" and t["ok"]]
    # one REST request per key, as the pipeline sends them
    assert sent and sent[0]["detail"] == f"sent {''.join(fake.digits_sent)}", (call["tools"], fake.digits_sent)


async def test_twilio_sends_keypad_tones_in_band(
        simulate: Simulate, twilio_line_with, fake_carrier: FakeCarrier, http: httpx.AsyncClient,  # type: ignore[no-untyped-def]
        tts_url: str) -> None:
    line: SimLine = await twilio_line_with(**PRESS_AGENT)
    sid, extra = await _call(simulate, line, tts_url)
    call = await wait_for_call(http, line, inbound_call_id("twilio", sid), ended_with_recording)
    sent = [t for t in call["tools"] if t["name"] == "send_digits" and t["ok"]]
    assert sent, call["tools"]
    pressed = sent[0]["detail"].removeprefix("sent ")
    report = extra["report"]
    assert set(pressed) <= _tones_heard(bytes(report.heard_pcm), report.heard_rate), pressed
    fake = next(c for c in fake_carrier.calls.values() if c.sid == sid)
    assert "".join(fake.digits_sent).startswith(pressed), (fake.digits_sent, pressed)


async def test_twilio_in_band_keys_route_the_simulated_phone_menu(
        voice_server: VoiceServer, twilio_line_with, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    """An outbound Twilio call that reaches a phone menu: the agent presses a key (send_digits, held to the tool by
    tool_choice), the tones go in-band, the fake carrier decodes them and the menu answers with its branch, which
    the agent hears. Every key leads to the branch: SmolLM2 does not read menus (docs/flows-and-phone.md), so
    which key it presses is not what is tested here, only that Twilio's in-band keys reach the menu."""
    line: SimLine = await twilio_line_with(**PRESS_AGENT)
    branch_text = "You are through to the accounts team. How can I help?"
    branch = synthesize(tts_url, branch_text)
    menu = CallScript(turns=[CallerTurn(audio=synthesize(tts_url, "Welcome to Acme. For bookings, press one."),
                                        gap_s=0.5, label="menu")], hangup_after_s=None, max_duration_s=30)
    number = "+14155559811"
    call = await place_twilio_outbound(http, line, fake_carrier, voice_server, number,
                                       ScriptedCallee(script=menu, menu=dict.fromkeys("0123456789*#", branch)))
    sent = [t for t in call["tools"] if t["name"] == "send_digits" and t["ok"]]
    assert sent, (call["tools"], call["end_reason"], call["turns"])
    fake = next(c for c in fake_carrier.calls.values() if c.to_number == number)
    # The menu answers the first key; the agent, interrupted by it, may not finish playing the rest (SmolLM2 may
    # press a long run of keys, whose later tones the menu's branch cuts off).
    keys_heard = "".join(fake.digits_sent)
    assert keys_heard and sent[0]["detail"].removeprefix("sent ")[0] == keys_heard[0], (fake.digits_sent, sent)
    heard = " ".join(t["text"] for t in call["turns"] if t["speaker"] == "caller")
    assert words_heard(heard, "accounts team how can I help") >= 3, call["turns"]
