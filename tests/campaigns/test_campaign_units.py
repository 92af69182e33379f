"""Pure pieces of the campaign code: carrier outcomes, retry decisions, calling windows across DST, CSV reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.campaigns.csv_io import decode_csv_bytes, neutralize_cell, normalize_header, sniff_delimiter
from backend.campaigns.models import CallingWindows, RetryPolicy, RetryRule
from backend.campaigns.outcomes import attempt_outcome, next_contact_state
from backend.campaigns.phones import PhoneError, normalize_phone
from backend.campaigns.windows import compile_windows, window_state
from telephony.registry import CARRIERS

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "answered_by", "expected"), [
    ("ringing", None, None), ("in-progress", None, None), ("completed", None, "completed"),
    ("completed", "human", "completed"), ("completed", "machine_end_beep", "voicemail"), ("completed", "fax", "voicemail"),
    ("busy", None, "busy"), ("no-answer", None, "no_answer"), ("failed", None, "failed"), ("canceled", None, "canceled"),
])
def test_twilio_outcomes(status: str, answered_by: str | None, expected: str | None) -> None:
    update = CARRIERS["twilio"].parse_status({"CallSid": "CA1", "CallStatus": status})
    assert attempt_outcome(update, answered_by) == expected


@pytest.mark.parametrize(("form", "machine", "expected"), [
    ({"Event": "StartApp", "CallStatus": "in-progress"}, False, None),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "4000", "Duration": "12"}, False, "completed"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "4000", "Duration": "12"}, True, "voicemail"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "9100"}, False, "voicemail"),
    ({"Event": "Hangup", "CallStatus": "busy", "HangupCause": "USER_BUSY"}, False, "busy"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "3020"}, False, "busy"),
    ({"Event": "Hangup", "CallStatus": "no-answer", "HangupCause": "NO_ANSWER"}, False, "no_answer"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "6010"}, False, "no_answer"),
    ({"Event": "Hangup", "CallStatus": "timeout"}, False, "no_answer"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "7011"}, False, "failed"),
    ({"Event": "Hangup", "CallStatus": "completed", "HangupCauseCode": "1000"}, False, "canceled"),
])
def test_vobiz_outcomes(form: dict[str, str], machine: bool, expected: str | None) -> None:
    update = CARRIERS["vobiz"].parse_status({"CallUUID": "uuid-1", **form})
    assert attempt_outcome(update, "machine_start" if machine else None) == expected


def test_retry_decisions() -> None:
    policy = RetryPolicy(busy=RetryRule(max_attempts=3, delays_s=[60, 600]))
    first = next_contact_state("busy", 0, "running", policy, T)
    assert (first.status, first.next_attempt_at, first.dials) == ("pending", T + timedelta(seconds=60), 1)
    second = next_contact_state("busy", 1, "running", policy, T)
    assert second.next_attempt_at == T + timedelta(seconds=600)
    third = next_contact_state("busy", 2, "running", policy, T)
    assert (third.status, third.next_attempt_at, third.dials) == ("busy", None, 3)
    assert next_contact_state("busy", 0, "paused", policy, T).status == "pending"  # resumes later
    assert next_contact_state("busy", 0, "canceled", policy, T).status == "canceled"
    assert next_contact_state("completed", 0, "running", policy, T).status == "completed"
    lost = next_contact_state("lost", 0, "running", policy, T)
    assert (lost.status, lost.dials) == ("failed", 1)  # never redialled: the call may have connected
    not_dialed = next_contact_state("not_dialed", 2, "running", policy, T)
    assert (not_dialed.status, not_dialed.dials, not_dialed.next_attempt_at) == ("pending", 2, T)
    throttled = next_contact_state("throttled", 0, "running", policy, T)
    assert throttled.status == "pending" and throttled.dials == 0 and throttled.next_attempt_at > T


def test_windows_across_daylight_saving() -> None:
    windows = CallingWindows(timezone="America/New_York",
                             days={"sun": [{"start": "09:00", "end": "12:00"}], "mon": [{"start": "02:00", "end": "03:30"}]})
    spans = compile_windows(windows)
    # 2026-03-08 is the spring-forward Sunday in New York: 09:00 local is 13:00 UTC (EDT), not 14:00.
    assert window_state(datetime(2026, 3, 8, 12, 59, tzinfo=UTC), windows.timezone, spans) == (
        False, datetime(2026, 3, 8, 13, 0, tzinfo=UTC))
    # Open until 12:00 EDT = 16:00 UTC.
    assert window_state(datetime(2026, 3, 8, 13, 0, tzinfo=UTC), windows.timezone, spans) == (
        True, datetime(2026, 3, 8, 16, 0, tzinfo=UTC))
    # After Sunday's window: next is Monday 02:00 EDT = 06:00 UTC.
    assert window_state(datetime(2026, 3, 8, 16, 0, tzinfo=UTC), windows.timezone, spans)[1] == datetime(
        2026, 3, 9, 6, 0, tzinfo=UTC)
    closed = CallingWindows(timezone="UTC", days={})
    assert window_state(T, "UTC", compile_windows(closed)) == (False, None)


def test_csv_reading_helpers() -> None:
    assert decode_csv_bytes("\ufeffa,b".encode()) == ("a,b", "utf-8-sig")
    assert decode_csv_bytes("é".encode("latin-1"))[0] == "é"
    assert decode_csv_bytes("x\ty".encode("utf-16")) == ("x\ty", "utf-16")
    assert sniff_delimiter('name;phone;"a,b"\n') == ";"
    assert normalize_header(" First Name ") == "first_name" and normalize_header("2nd") == "_2nd"
    assert [neutralize_cell(v) for v in ("=1", "+1", "-1", "@x", "\tx", "ok", None)] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "ok", ""]


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("(415) 555-2671", "US", "+14155552671"), ("0044 20 7183 8750", "US", "+442071838750"),
    ("020 7183 8750", "GB", "+442071838750"), ("4155552671.0", "US", "+14155552671"),
])
def test_phone_normalisation(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "12", "1.4155E+10", "call me", "+1 415 555 267199999"])
def test_phone_rejections(raw: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(raw, "US")
