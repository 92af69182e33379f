"""PII redaction (core/redaction.py): each kind in transcripts, written and spoken; typed placeholders; the
transcript writer emits only redacted text and reports the caller's redacted spans; patterns that need backtracking
are refused and the accepted ones run in linear time; the beep-over of a finished recording."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from core.agent_config import AgentConfig
from core.call_events import ServiceDegraded, ToolInvoked, TurnRecorded
from core.redaction import RedactionConfig, RedactionPattern, Redactor, luhn_valid
from pipelines.observers import CallClock, LatencyObserver
from pipelines.transcript import TranscriptWriter
from voice_server.beep_over import beep_over

ALL = RedactionConfig(enabled=True, sensitive_digit_lengths=[4],
                      patterns=[RedactionPattern(label="policy", pattern=r"POL-\d{6}")])


@pytest.mark.parametrize(("text", "expected"), [
    ("my card is 4111 1111 1111 1111 thanks", "my card is [card number] thanks"),
    ("card 4242424242424242 expiry soon", "card [card number] expiry soon"),
    ("it's four one one one one one one one one one one one one one one one", "it's [card number]"),
    ("my social is 078-05-1120", "my social is [government id]"),
    ("national insurance AB 12 34 56 C please", "national insurance [government id] please"),
    ("aadhaar 2345 6789 0123", "aadhaar [government id]"),
    ("write to jane.doe+calls@example.co.uk today", "write to [email] today"),
    ("it's jane dot doe at example dot com", "it's [email]"),
    ("my pin is 4 7 1 9", "my pin is [sensitive digits]"),
    ("the code is 9931", "the code is [sensitive digits]"),
    ("policy POL-123456 renews", "policy [policy] renews"),
])
def test_each_kind_is_replaced_by_its_placeholder(text: str, expected: str) -> None:
    assert Redactor(ALL).redact(text).text == expected


@pytest.mark.parametrize("text", [
    "I'd like 12 apples and one orange",
    "card 4111 1111 1111 1112 fails the Luhn check",  # not a card number: kept
    "call me on the 15th at 3 pm",
    "we are open 9 to 5",
])
def test_ordinary_text_is_kept(text: str) -> None:
    assert Redactor(ALL).redact(text).text == text


def test_only_the_chosen_kinds_and_nothing_when_off() -> None:
    text = "mail jane@example.com card 4111111111111111"
    emails_only = Redactor(RedactionConfig(enabled=True, kinds=["email"]))
    assert emails_only.redact(text).text == "mail [email] card 4111111111111111"
    assert Redactor(RedactionConfig(enabled=False)).redact(text).text == text
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


class _Sink:
    def __init__(self) -> None:
        self.turns: list[TurnRecorded] = []
        self.spans: list[tuple[int, int]] = []

    def turn(self, event: TurnRecorded) -> None:
        self.turns.append(event)

    def tool(self, event: ToolInvoked) -> None:
        pass

    def degraded(self, event: ServiceDegraded) -> None:
        pass

    def redacted(self, start_ms: int, end_ms: int) -> None:
        self.spans.append((start_ms, end_ms))

    def timeline_ms(self, monotonic_s: float | None = None) -> int:
        return 1500


def test_transcript_writer_emits_only_redacted_text() -> None:
    sink = _Sink()
    latency = LatencyObserver(CallClock(), stt=None, llm=None, tts=None, transport_out=None)
    writer = TranscriptWriter("call-1", sink, latency, Redactor(ALL))
    writer.caller_turn("my card is 4111 1111 1111 1111 and my email is a.b@example.org")
    writer.agent_turn("Thanks, I have noted that.", interrupted=False)
    writer.dtmf("4719")
    texts = [t.text for t in sink.turns]
    assert texts == ["my card is [card number] and my email is [email]", "Thanks, I have noted that.",
                     "[DTMF [sensitive digits]]"]
    assert "4111" not in " ".join(t.model_dump_json() for t in sink.turns)
    assert sink.spans == [(1500, 1500), (1500, 1500)]  # the caller's turns only


@pytest.mark.parametrize("pattern", [r"(a+)\1", r"(?=secret)\w+", r"(?<!x)y", "(", "a" * 1001, "x*"])
def test_patterns_that_need_backtracking_or_match_nothing_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError):
        AgentConfig.model_validate({"redaction": {"enabled": True,
                                                  "patterns": [{"label": "x", "pattern": pattern}]}})


def test_nested_quantifiers_run_in_linear_time() -> None:
    """`(a+)+b` backtracks exponentially in Python's re; on RE2 it answers at once, even on 200k characters."""
    redactor = Redactor(RedactionConfig(enabled=True, kinds=[],
                                        patterns=[RedactionPattern(label="x", pattern=r"(a+)+b")]))
    attack = "a" * 200_000 + "!"
    assert redactor.redact(attack).text == attack


@pytest.mark.parametrize("text", [
    "Your booking number is 4 8 1 5 1 6, thanks.", "I have 481516 on file.",
    "That is four eight one five one six.", "The one ending in 1516?"])
def test_sensitive_digits_entered_in_the_call_are_masked_wherever_they_come_back(text: str) -> None:
    """The LLM hears a sensitive keypad entry and may read it back: that reply is masked, redaction on or off."""
    redactor = Redactor(RedactionConfig(enabled=False))
    assert redactor.redact(text).text == text
    redactor.remember("481516")
    masked = redactor.redact(text).text
    assert "1516" not in masked and "one five one six" not in masked and "[sensitive digits]" in masked
    assert redactor.redact("Your appointment is at 10 on the 3rd.").text == "Your appointment is at 10 on the 3rd."


def test_beep_over_replaces_only_the_callers_span(tmp_path: Path) -> None:
    rate = 8000
    caller = (np.sin(np.arange(rate * 2) * 0.05) * 8000).astype("<i2")
    agent = (np.arange(rate * 2) % 100).astype("<i2")
    path = tmp_path / "call.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.stack([caller, agent], axis=1).tobytes())
    assert beep_over(path, rate, [(500, 1000)]) == rate // 2
    with wave.open(str(path), "rb") as back:
        frames = np.frombuffer(back.readframes(back.getnframes()), dtype="<i2").reshape(-1, 2)
    span = slice(rate // 2, rate)
    assert not np.array_equal(frames[span, 0], caller[span])
    assert np.array_equal(frames[: rate // 2, 0], caller[: rate // 2])
    assert np.array_equal(frames[rate:, 0], caller[rate:])
    assert np.array_equal(frames[:, 1], agent)
    spectrum = np.abs(np.fft.rfft(frames[span, 0].astype(float)))
    assert abs(int(np.argmax(spectrum)) * rate / (rate // 2) - 1000) < 20  # a 1 kHz beep
