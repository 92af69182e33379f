"""Phone numbers from CSVs and forms, normalised to E.164."""

from __future__ import annotations

import re

import phonenumbers

_SCIENTIFIC = re.compile(r"^\d(?:[.,]\d+)?[eE]\+?\d+$")
_ALLOWED = re.compile(r"^[\d\s().+\-/]+$")


class PhoneError(ValueError):
    pass


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """E.164 for a valid number, else PhoneError with a reason a person can act on.

    Numbers without a country code take `default_region`; a leading 00 counts as an international prefix.
    """
    value = (raw or "").strip()
    if not value:
        raise PhoneError("phone number is empty")
    if len(value) > 40:
        raise PhoneError("phone number is too long")
    if _SCIENTIFIC.match(value):
        raise PhoneError("looks like a spreadsheet number in scientific notation; format the column as text")
    if value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]  # a spreadsheet that saved the number as a float
    if not _ALLOWED.match(value):
        raise PhoneError("phone number contains letters or symbols")
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneError("wrong number of digits for the country")
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError("not a valid number for the country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_code_of(e164: str) -> int | None:
    try:
        code = phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException:
        return None
    return int(code) if code is not None else None
