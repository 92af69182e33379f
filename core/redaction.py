"""PII redaction of what a call leaves behind: transcripts (and so analysis, webhooks and logs built from them).

Applied on the voice server where each turn is written (pipelines/transcript.py), before the text leaves the
process: the LLM still hears the caller, but the backend, its database, webhooks and logs only ever see typed
placeholders ("[card number]"). Per agent (`AgentConfig.redaction`):

- card numbers: 13 to 19 digits that pass the Luhn check, written as digits or spoken ("four one one one ...");
- government ids: US social security numbers (3-2-4), UK national insurance numbers, Indian Aadhaar (4-4-4);
- email addresses, written or spoken ("jane at example dot com");
- digit runs of lengths the agent marks sensitive (a 4-digit PIN, a 6-digit one-time code), DTMF included;
- the digits a caller entered in this call through a sensitive `collect_digits`, wherever they appear again: the LLM
  needs them for its tools and may read them back, and its reply is a transcript turn like any other. This one is
  on for every agent, redaction enabled or not, since the agent marked the entry sensitive;
- the agent's own patterns, each with its placeholder label. They run on RE2 (linear time); a pattern that needs
  backtracking is refused when the agent is saved (core/schema_patterns.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.schema_patterns import MAX_PATTERN_CHARS, pattern_problem

PiiKind = Literal["card_number", "government_id", "email"]
DEFAULT_KINDS: tuple[PiiKind, ...] = ("card_number", "government_id", "email")
PLACEHOLDERS: dict[str, str] = {"card_number": "[card number]", "government_id": "[government id]",
                                "email": "[email]", "digits": "[sensitive digits]"}

_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9"}
# A run of digit groups and spoken digits, separated by spaces, dashes, dots or commas.
_TOKEN = r"(?:\d+|" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + r")"
_RUN = re.compile(rf"\b{_TOKEN}(?:[\s,.\-]+{_TOKEN})*\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}\b")
_SPOKEN_EMAIL = re.compile(
    r"\b[A-Za-z0-9._\-]{1,64}(?:\s+(?:dot|underscore)\s+[A-Za-z0-9\-]{1,64}){0,4}\s+at\s+[A-Za-z0-9\-]{1,63}"
    r"(?:\s+dot\s+[A-Za-z]{2,24}){1,4}\b", re.IGNORECASE)
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
_SSN = re.compile(r"^\d{3}[\s\-]\d{2}[\s\-]\d{4}$")
_AADHAAR = re.compile(r"^[2-9]\d{3}\s\d{4}\s\d{4}$")

Label = Annotated[str, Field(pattern=r"^[a-z][a-z0-9 _\-]{0,31}$")]


class RedactionPattern(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label = Field(description="Shown as the placeholder: [label].")
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS, description="RE2 syntax.")

    @field_validator("pattern")
    @classmethod
    def _linear_time(cls, value: str) -> str:
        if (problem := pattern_problem({"pattern": value})) is not None:
            raise ValueError(problem)
        if _compile(value).search("") is not None:
            raise ValueError("pattern matches the empty string")
        return value


class RedactionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    kinds: list[PiiKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))
    sensitive_digit_lengths: list[Annotated[int, Field(ge=3, le=20)]] = Field(
        default_factory=list, max_length=8, description="Digit runs of these lengths are redacted (a 4-digit PIN).")
    patterns: list[RedactionPattern] = Field(default_factory=list, max_length=16)
    beep_recording: bool = Field(default=False, description="Also beep over the caller's audio of a redacted turn.")


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.max_mem = 8 << 20
    return re2.compile(pattern, options)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@dataclass(frozen=True)
class Redacted:
    text: str
    kinds: tuple[str, ...]  # what was found, in order (for counts and the beep-over)


class Redactor:
    def __init__(self, config: RedactionConfig) -> None:
        self._config = config
        self._kinds = set(config.kinds)
        self._lengths = set(config.sensitive_digit_lengths)
        self._custom = [(_compile(p.pattern), f"[{p.label}]") for p in config.patterns]
        self._secrets: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self._config.enabled or bool(self._secrets)

    def remember(self, digits: str) -> None:
        """Digits entered as sensitive in this call: masked from now on wherever they appear (read back, say)."""
        if len(digits) >= 3:
            self._secrets.add(digits)

    def redact(self, text: str) -> Redacted:
        if not self.enabled or not text:
            return Redacted(text, ())
        found: list[str] = []
        if not self._config.enabled:  # only this call's secrets
            return Redacted(_RUN.sub(lambda m: self._digit_run(m.group(0), found, secrets_only=True), text),
                            tuple(found))

        def sub(pattern: re.Pattern[str], kind: str, value: str) -> str:
            def replace(_match: re.Match[str]) -> str:
                found.append(kind)
                return PLACEHOLDERS[kind]
            return pattern.sub(replace, value)

        if "email" in self._kinds:
            text = sub(_EMAIL, "email", text)
            text = sub(_SPOKEN_EMAIL, "email", text)
        if "government_id" in self._kinds:
            text = sub(_NINO, "government_id", text)
        text = _RUN.sub(lambda m: self._digit_run(m.group(0), found), text)
        for pattern, placeholder in self._custom:
            text, count = pattern.subn(placeholder, text)
            found.extend([placeholder] * count)
        return Redacted(text, tuple(found))

    def _digit_run(self, run: str, found: list[str], secrets_only: bool = False) -> str:
        tokens = re.findall(_TOKEN, run, re.IGNORECASE)
        digits = "".join(t if t.isdigit() else _DIGIT_WORDS[t.lower()] for t in tokens)
        if not any(t.isdigit() for t in tokens) and len(tokens) < 3:
            return run  # "one" or "oh two" in speech is not a number worth hiding
        kind: str | None = None
        if self._is_secret(digits):
            kind = "digits"
        elif secrets_only:
            return run
        elif "card_number" in self._kinds and 13 <= len(digits) <= 19 and luhn_valid(digits):
            kind = "card_number"
        elif "government_id" in self._kinds and (_SSN.match(run) or _AADHAAR.match(run)):
            kind = "government_id"
        elif len(digits) in self._lengths:
            kind = "digits"
        if kind is None:
            return run
        found.append(kind)
        return PLACEHOLDERS[kind]

    def _is_secret(self, digits: str) -> bool:
        """The whole entry, or 4+ digits of it ("ending in 3456")."""
        return any(secret in digits or (len(digits) >= 4 and digits in secret) for secret in self._secrets)
