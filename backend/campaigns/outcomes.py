"""From carrier callbacks to attempt outcomes, and from an outcome to the contact's next state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.campaigns.models import (
    AttemptOutcome,
    CampaignStatus,
    ContactStatus,
    RetryableOutcome,
    RetryPolicy,
)

TWILIO_FINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
MACHINE_ANSWERS = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
# With DetectMessageEnd Twilio reports these once the greeting is over: the moment to leave a message.
MESSAGE_END_ANSWERS = {"machine_end_beep", "machine_end_silence", "machine_end_other"}
VOBIZ_FINAL_STATUSES = {"completed", "busy", "failed", "timeout", "no-answer", "cancel", "canceled"}

# Outcomes that mean a call really went out to the carrier (counted against max attempts).
DIALLED_OUTCOMES = {"completed", "voicemail", "busy", "no_answer", "failed", "canceled", "lost"}


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and answered_by in MACHINE_ANSWERS


def twilio_outcome(call_status: str, answered_by: str | None) -> AttemptOutcome | None:
    """None while the call is not over."""
    if call_status not in TWILIO_FINAL:
        return None
    if call_status == "completed":
        return "voicemail" if is_machine(answered_by) else "completed"
    mapped: dict[str, AttemptOutcome] = {"busy": "busy", "no-answer": "no_answer", "failed": "failed",
                                         "canceled": "canceled"}
    return mapped[call_status]


def vobiz_outcome(form: dict[str, str], machine: bool) -> AttemptOutcome | None:
    """The Hangup callback (hangup_url), reference A3; cause codes from the hangup-causes table."""
    event = form.get("Event", "")
    call_status = form.get("CallStatus", "").lower()
    if event != "Hangup" and call_status not in VOBIZ_FINAL_STATUSES:
        return None
    try:
        code = int(form.get("HangupCauseCode") or 0)
    except ValueError:
        code = 0
    cause = form.get("HangupCause", "").upper()
    if code == 9100 or cause == "MACHINE_DETECTED":
        return "voicemail"
    if call_status == "busy" or code in (3010, 3020) or cause in ("USER_BUSY", "CALL_REJECTED"):
        return "busy"
    if call_status in ("no-answer", "timeout") or code in (3000, 6010) or cause in ("NO_ANSWER", "RING_TIMEOUT"):
        return "no_answer"
    if call_status in ("cancel", "canceled") or code == 1000:
        return "canceled"
    if call_status == "failed" or code in (1010, 7011, 8011) or cause in ("UNALLOCATED_NUMBER", "NETWORK_ERROR"):
        return "failed"
    answered = bool(form.get("AnswerTime")) or _positive(form.get("Duration"))
    if call_status == "completed" and not answered and cause not in ("", "NORMAL_CLEARING"):
        return "no_answer"
    return "voicemail" if machine else "completed"


def _positive(value: str | None) -> bool:
    try:
        return float(value or 0) > 0
    except ValueError:
        return False


@dataclass(frozen=True)
class NextState:
    status: ContactStatus
    next_attempt_at: datetime | None
    dials: int


THROTTLE_BACKOFF_S = 5


def next_contact_state(outcome: AttemptOutcome, dials_before: int, campaign_status: CampaignStatus,
                       retry: RetryPolicy, ended_at: datetime) -> NextState:
    dials = dials_before + (1 if outcome in DIALLED_OUTCOMES else 0)
    stopped = campaign_status in ("canceled", "completed")
    if outcome == "completed":
        return NextState("completed", None, dials)
    if outcome == "lost":
        # Nobody knows if the call connected: never risk dialling the person twice.
        return NextState("failed", None, dials)
    if outcome == "canceled":
        return NextState("canceled", None, dials)
    if outcome == "not_dialed" or outcome == "throttled":
        if stopped:
            return NextState("canceled", None, dials)
        wait = THROTTLE_BACKOFF_S if outcome == "throttled" else 0
        return NextState("pending", ended_at + timedelta(seconds=wait), dials)
    retryable: RetryableOutcome = outcome  # what is left: busy, no_answer, failed, voicemail
    rule = retry.rule(retryable)
    if dials < rule.max_attempts and not stopped:
        return NextState("pending", ended_at + timedelta(seconds=rule.delay_after(dials)), dials)
    return NextState("canceled" if stopped and dials < rule.max_attempts else retryable, None, dials)
