"""The keypad collector on its own: end key, digit count, speech instead of keys, a timeout, masking."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.agent_config import AgentConfig, DigitCollection
from pipelines.keypad import DigitEntry, Keypad, digits_in_speech, mask


def test_digits_in_speech() -> None:
    assert digits_in_speech("It's four five six, 7 8 9.") == "456789"
    assert digits_in_speech("one oh two") == "102"
    assert digits_in_speech("I don't know") == ""


async def _press(keypad: Keypad, keys: str) -> None:
    for key in keys:
        await keypad._add(key)


async def test_an_entry_ends_at_the_end_key_or_the_count_and_sensitive_digits_are_masked() -> None:
    typed: list[str] = []
    interruptions: list[bool] = []
    keypad = Keypad(on_digits=typed.append)

    async def interrupt() -> None:
        interruptions.append(True)

    keypad.broadcast_interruption = interrupt  # type: ignore[method-assign]  # no pipeline around it here
    secret = DigitCollection(max_digits=6, end_key="#", sensitive=True)
    waiting = keypad.collect(secret)
    await _press(keypad, "12#")
    assert await waiting == DigitEntry("12", "keypad") and typed == ["••"]
    waiting = keypad.collect(DigitCollection(max_digits=3, end_key=""))
    await _press(keypad, "987")
    assert await waiting == DigitEntry("987", "keypad") and typed[-1] == "987"
    # An interruption would make pipecat cancel the waiting collect_digits call itself (keys typed slowly lost it).
    assert interruptions == []


async def test_speech_or_a_timeout_ends_an_entry() -> None:
    keypad = Keypad()
    waiting = keypad.collect(DigitCollection())
    keypad.spoken("my number is four two")
    assert await waiting == DigitEntry("42", "speech")
    waiting = keypad.collect(DigitCollection())
    keypad.timed_out()
    assert await waiting == DigitEntry("", "timeout")


def test_mask_and_the_tool_name() -> None:
    assert mask("1234", DigitCollection(sensitive=True)) == "••••"
    assert mask("1234", DigitCollection()) == "1234"
    assert AgentConfig(collect_digits={"max_digits": 6}, llm={"tool_choice": "collect_digits"}).llm.tool_choice
    with pytest.raises(ValidationError, match="not one of the agent's tools"):
        AgentConfig(llm={"tool_choice": "collect_digits"})


def test_digits_to_send_are_checked_before_any_carrier_sees_them() -> None:
    from telephony.base import check_digits

    assert check_digits("12w#") == "12w#"
    for bad in ("", "12a", "1" * 65, "1\n2"):
        with pytest.raises(ValueError, match="digits to send"):
            check_digits(bad)
