"""The keypad: the collect_digits tool (e.g. "type your 6-digit booking number, then #") and send_digits.

While the tool waits, keypresses go to it instead of to the LLM as a message (DTMFToLLM's default); the entry ends
at the end key, at `max_digits`, or at the timeout. The caller may say the number instead: their next finished
turn ends the wait with the digits found in the words. Sensitive entries never appear in clear in the
transcript, in call events or in our logs; only the LLM (which needs them for its tools) sees the digits, and
since it may read them back, the call's transcript masks them in every later turn too (`on_sensitive`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import OutputDTMFUrgentFrame
from pipecat.services.llm_service import FunctionCallParams

from core.agent_config import DigitCollection
from core.call_events import ToolInvoked
from pipelines.processors import DTMFToLLM
from pipelines.tools import ToolContext, ToolRegistration

COLLECT_DIGITS = "collect_digits"  # the tool's name (the browser test call tells the page while it waits)

_SPOKEN = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "to": "2", "too": "2", "three": "3",
           "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}


def digits_in_speech(text: str) -> str:
    """"four five, 6 7" -> "4567": digits written as numerals or as words (as speech recognition writes them)."""
    out = []
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        out.append(token if token.isdigit() else _SPOKEN.get(token, ""))
    return "".join(out)


@dataclass(frozen=True)
class DigitEntry:
    digits: str
    via: Literal["keypad", "speech", "timeout"]


class Keypad(DTMFToLLM):
    """DTMFToLLM that can also hand keypresses to one waiting collect_digits call."""

    def __init__(self, *, on_digits: Callable[[str], None] | None = None,
                 on_sensitive: Callable[[str], None] | None = None) -> None:
        super().__init__(on_digits=on_digits)
        self._on_sensitive = on_sensitive or (lambda digits: None)
        self._request: DigitCollection | None = None
        self._entered = ""
        self._waiting: asyncio.Future[DigitEntry] | None = None

    def collect(self, request: DigitCollection) -> asyncio.Future[DigitEntry]:
        self._finish(DigitEntry(self._entered, "timeout"))  # a second request ends the first
        self._request, self._entered = request, ""
        self._waiting = asyncio.get_running_loop().create_future()
        return self._waiting

    def spoken(self, text: str) -> None:
        """The caller's finished turn: while a collection waits, the words are its answer."""
        if self._waiting is not None and text.strip():
            self._finish(DigitEntry(digits_in_speech(text), "speech"))

    def timed_out(self) -> None:
        self._finish(DigitEntry(self._entered, "timeout"))

    async def _add(self, digit: str) -> None:
        request = self._request
        if request is None:
            await super()._add(digit)
            return
        # No interruption here (unlike a keypress the LLM gets): pipecat cancels the running function calls on an
        # interruption, and this entry is one; keys typed 100 ms apart (a person, the browser keypad) lost it.
        if digit == request.end_key:
            self._finish(DigitEntry(self._entered, "keypad"))
            return
        self._entered += digit
        if len(self._entered) >= request.max_digits:
            self._finish(DigitEntry(self._entered, "keypad"))

    def _finish(self, entry: DigitEntry) -> None:
        waiting, request = self._waiting, self._request
        self._waiting, self._request, self._entered = None, None, ""
        if waiting is None or waiting.done() or request is None:
            return
        if request.sensitive and entry.digits:
            self._on_sensitive(entry.digits)
        if entry.via == "keypad" and entry.digits:
            self._on_digits(mask(entry.digits, request))
        waiting.set_result(entry)


def mask(digits: str, request: DigitCollection) -> str:
    return "•" * len(digits) if request.sensitive else digits


def collect_digits_tool(ctx: ToolContext, keypad: Keypad, request: DigitCollection) -> ToolRegistration:
    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        waiting = keypad.collect(request)
        try:
            entry = await asyncio.wait_for(asyncio.shield(waiting), timeout=request.timeout_s)
        except TimeoutError:
            keypad.timed_out()
            entry = await waiting
        shown = mask(entry.digits, request)
        ctx.events.tool(ToolInvoked(call_id=ctx.call_id, name=COLLECT_DIGITS, ok=bool(entry.digits),
                                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                                    detail=f"{len(entry.digits)} digits by {entry.via}: {shown}"[:500]))
        result: dict[str, str] = {"digits": entry.digits, "entered_by": entry.via}
        if not entry.digits:
            result["note"] = "Nothing was entered; ask again or offer another way."
        await params.result_callback(result)

    end = f", then {request.end_key}" if request.end_key else ""
    schema = FunctionSchema(
        name=COLLECT_DIGITS,
        description=f"{request.description} Up to {request.max_digits} digits{end}; the caller may also say them. "
                    "Say what to type before calling this.",
        properties={}, required=[])
    return ToolRegistration(schema, handler, timeout_s=request.timeout_s + 5.0)


def send_digits_tool(ctx: ToolContext) -> ToolRegistration:
    """Keypad tones to the other party (a phone menu, an extension): OutputDTMF frames, which the voice server's
    transport sends through the carrier's REST API or in-band (voice_server/media/transport.py)."""

    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        digits = str((params.arguments or {}).get("digits", ""))
        try:
            keys = [KeypadEntry(d) for d in digits]
        except ValueError:
            keys = []
        if not keys or len(keys) > 32:
            ctx.events.tool(ToolInvoked(call_id=ctx.call_id, name="send_digits", ok=False, duration_ms=0.0,
                                        detail=f"invalid digits {digits[:40]!r}"))
            await params.result_callback({"error": "digits must be 1-32 of 0-9, * and #"})
            return
        for key in keys:
            await params.llm.push_frame(OutputDTMFUrgentFrame(button=key))
        ctx.events.tool(ToolInvoked(call_id=ctx.call_id, name="send_digits", ok=True,
                                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                                    detail=f"sent {digits}"))
        await params.result_callback({"status": f"pressed {digits}"})

    schema = FunctionSchema(
        name="send_digits",
        description="Press keys on the phone keypad, e.g. to choose an option in a phone menu.",
        properties={"digits": {"type": "string", "pattern": "^[0-9*#]{1,32}$", "description": "Keys, e.g. 2 or 1#"}},
        required=["digits"])
    return ToolRegistration(schema, handler)
