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
from telephony.base import CallOutcome, StatusUpdate

MACHINE_ANSWERS = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
# With DetectMessageEnd Twilio reports these once the greeting is over: the moment to leave a message.
MESSAGE_END_ANSWERS = {"machine_end_beep", "machine_end_silence", "machine_end_other"}

# Outcomes that mean a call really went out to the carrier (counted against max attempts).
DIALLED_OUTCOMES = {"completed", "voicemail", "busy", "no_answer", "failed", "canceled", "lost"}

# The carrier's outcome (telephony's one status map per carrier) in the dialer's words. A callee who declines
# (REJECTED) is retried like a busy line.
ATTEMPT_OUTCOMES: dict[CallOutcome, AttemptOutcome] = {
    CallOutcome.COMPLETED: "completed", CallOutcome.BUSY: "busy", CallOutcome.REJECTED: "busy",
    CallOutcome.NO_ANSWER: "no_answer", CallOutcome.FAILED: "failed", CallOutcome.CANCELED: "canceled",
    CallOutcome.MACHINE: "voicemail",
}


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and answered_by in MACHINE_ANSWERS


def attempt_outcome(update: StatusUpdate | None, answered_by: str | None) -> AttemptOutcome | None:
    """None while the call is not over. A completed call that a machine answered is a voicemail."""
    if update is None or update.outcome is None:
        return None
    if update.outcome is CallOutcome.COMPLETED and is_machine(answered_by):
        return "voicemail"
    return ATTEMPT_OUTCOMES[update.outcome]


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
