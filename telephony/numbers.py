"""Phone numbers as carriers send them, normalised to E.164 for lookups."""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str | None, default_region: str = "US") -> str:
    """Twilio sends E.164; Vobiz strips the '+' and sometimes sends national form with a leading 0.

    Returns the input unchanged (stripped) when it is not a phone number (e.g. `client:alice`, `sip:...`).
    """
    value = (raw or "").strip()
    if not value or ":" in value:
        return value
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        return value
    if value.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        try:
            parsed = phonenumbers.parse(digits, default_region)
        except phonenumbers.NumberParseException:
            return value
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return value
    return "+" + digits

