"""Campaign shapes: what the API takes and returns, and the enums the dialer works with."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.models.common import ApiModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

CampaignStatus = Literal["draft", "running", "paused", "completed", "canceled"]
# A contact is terminal once it is in any status other than pending/dialing/importing.
ContactStatus = Literal[
    "importing", "pending", "dialing",
    "completed", "voicemail", "busy", "no_answer", "failed", "dnc", "canceled",
]
ACTIVE_CONTACT_STATUSES: tuple[str, ...] = ("pending", "dialing")
TERMINAL_CONTACT_STATUSES: tuple[str, ...] = ("completed", "voicemail", "busy", "no_answer", "failed", "dnc", "canceled")

# What one dial attempt came to.
#  completed: a person answered;  voicemail: an answering machine answered;  busy / no_answer / failed: carrier said so;
#  canceled: the campaign was canceled before the carrier connected;  lost: no final carrier callback ever came
#  (given up, never redialled);  not_dialed: claimed but the dialer died before sending it (redialled);
#  throttled: the carrier refused with 429 (redialled shortly, not counted as a dial).
AttemptOutcome = Literal["completed", "voicemail", "busy", "no_answer", "failed", "canceled", "lost", "not_dialed",
                         "throttled"]
RetryableOutcome = Literal["busy", "no_answer", "failed", "voicemail"]

_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


def minutes_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class TimeRange(ApiModel):
    start: str = Field(examples=["09:00"], description="HH:MM, local time, inclusive.")
    end: str = Field(examples=["17:30"], description="HH:MM (24:00 allowed), local time, exclusive.")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError("expected HH:MM (00:00-23:59, or 24:00 as an end)")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if minutes_of(self.start) >= minutes_of(self.end):
            raise ValueError("start must be before end (split overnight windows across two days)")
        return self


def _default_days() -> dict[Weekday, list[TimeRange]]:
    return {day: [TimeRange(start="09:00", end="20:00")] for day in WEEKDAYS}


class CallingWindows(ApiModel):
    """When contacts may be called, per weekday, in local time."""

    timezone: str = Field(default="UTC", examples=["America/New_York"], description="The campaign's IANA timezone.")
    use_contact_timezone: bool = Field(
        default=True, description="A contact with its own timezone (CSV column `timezone`) is called in its local hours."
    )
    days: dict[Weekday, list[TimeRange]] = Field(
        default_factory=_default_days, description="Weekdays left out (or with no ranges) are closed."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("days")
    @classmethod
    def _no_overlaps(cls, days: dict[Weekday, list[TimeRange]]) -> dict[Weekday, list[TimeRange]]:
        for day, ranges in days.items():
            spans = sorted((minutes_of(r.start), minutes_of(r.end)) for r in ranges)
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                if start < end:
                    raise ValueError(f"{day}: time ranges overlap")
        return days


class RetryRule(ApiModel):
    max_attempts: int = Field(default=1, ge=1, le=20, description="Dials in total after which this outcome is final.")
    delays_s: list[int] = Field(
        default_factory=lambda: [3600], min_length=1, max_length=20,
        description="Wait before retry k (the last value repeats).",
    )

    @field_validator("delays_s")
    @classmethod
    def _non_negative(cls, v: list[int]) -> list[int]:
        if any(d < 0 or d > 30 * 86400 for d in v):
            raise ValueError("delays must be between 0 and 30 days")
        return v

    def delay_after(self, dials: int) -> int:
        """Seconds to wait after the `dials`-th dial (1-based) before the next one."""
        return self.delays_s[min(dials - 1, len(self.delays_s) - 1)]


class RetryPolicy(ApiModel):
    busy: RetryRule = Field(default_factory=lambda: RetryRule(max_attempts=3, delays_s=[600]))
    no_answer: RetryRule = Field(default_factory=lambda: RetryRule(max_attempts=3, delays_s=[1800]))
    failed: RetryRule = Field(default_factory=lambda: RetryRule(max_attempts=2, delays_s=[300]))
    voicemail: RetryRule = Field(default_factory=lambda: RetryRule(max_attempts=1, delays_s=[3600]))

    def rule(self, outcome: RetryableOutcome) -> RetryRule:
        rule: RetryRule = getattr(self, outcome)
        return rule


class VoicemailPolicy(ApiModel):
    detect: bool = Field(default=True, description="Ask the carrier for answering-machine detection.")
    action: Literal["hang_up", "leave_message"] = "hang_up"
    message: str | None = Field(default=None, max_length=1000,
                                description="Spoken by the carrier after the beep (leave_message).")

    @model_validator(mode="after")
    def _message_needed(self) -> VoicemailPolicy:
        if self.action == "leave_message" and not self.message:
            raise ValueError("leave_message needs a message")
        return self


class CampaignSettingsFields(ApiModel):
    windows: CallingWindows = Field(default_factory=CallingWindows)
    max_concurrent_calls: int = Field(default=5, ge=1, le=1000, description="Live calls at once (dial to hang-up).")
    calls_per_second: float = Field(default=1.0, gt=0, le=100, description="New dials per second, all dialers together.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    voicemail: VoicemailPolicy = Field(default_factory=VoicemailPolicy)
    ring_timeout_s: int = Field(default=30, ge=5, le=120)
    max_call_duration_s: int = Field(default=900, ge=10, le=4 * 3600, description="Carrier time limit per call.")
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$",
                                description="Country for numbers written without a country code.")


class CampaignCreate(CampaignSettingsFields):
    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(min_length=1, max_length=64)
    caller_number_ids: list[str] = Field(min_length=1, max_length=100,
                                         description="Phone numbers (ids) used as caller id, in rotation.")

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "name": "Renewal reminders", "agent_id": "6f1d…", "caller_number_ids": ["a0c3…"],
        "windows": {"timezone": "America/New_York", "days": {"mon": [{"start": "09:00", "end": "18:00"}]}},
        "max_concurrent_calls": 10, "calls_per_second": 2,
        "retry": {"busy": {"max_attempts": 3, "delays_s": [300, 900]}},
        "voicemail": {"action": "leave_message", "message": "Hi, this is Acme. Please call us back."},
    }]})


class CampaignUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=64)
    caller_number_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)
    windows: CallingWindows | None = None
    max_concurrent_calls: int | None = Field(default=None, ge=1, le=1000)
    calls_per_second: float | None = Field(default=None, gt=0, le=100)
    retry: RetryPolicy | None = None
    voicemail: VoicemailPolicy | None = None
    ring_timeout_s: int | None = Field(default=None, ge=5, le=120)
    max_call_duration_s: int | None = Field(default=None, ge=10, le=4 * 3600)
    default_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")


class CampaignOut(CampaignSettingsFields):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    agent_id: str
    caller_number_ids: list[str]
    status: CampaignStatus
    contact_count: int = 0
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    paused_reason: str | None = Field(default=None, description="Why the dialer paused the campaign, if it did "
                                                                "(e.g. the carrier refused the credentials).")


class ContactOut(BaseModel):
    id: str
    phone: str
    variables: dict[str, str]
    timezone: str | None = None
    status: ContactStatus
    dials: int = Field(description="Calls actually placed to this contact.")
    next_attempt_at: datetime | None = None
    last_outcome: AttemptOutcome | None = None
    last_call_id: str | None = None
    row: int | None = Field(default=None, description="Row in the uploaded CSV (header = row 1).")
    updated_at: datetime


class RowError(BaseModel):
    row: int = Field(description="1-based line of the CSV record (the header is row 1).")
    column: str | None = None
    message: str
    value: str | None = Field(default=None, description="The offending value, shortened.")


class ImportReport(BaseModel):
    import_id: str | None = Field(default=None, description="Set when contacts were imported.")
    imported: int = 0
    rows: int = Field(default=0, description="Data rows read (header excluded).")
    duplicates_in_file: int = 0
    already_present: int = Field(default=0, description="Numbers already in the campaign or the list, skipped.")
    on_dnc_list: int = Field(default=0, description="Imported numbers currently on the do-not-call list.")
    phone_column: str | None = None
    variables: list[str] = Field(default_factory=list, description="Columns kept as template variables.")
    encoding: str | None = None
    delimiter: str | None = None
    errors: list[RowError] = Field(default_factory=list)
    error_count: int = 0


class Progress(BaseModel):
    campaign_id: str
    status: CampaignStatus
    total: int
    by_status: dict[str, int]
    live_calls: int = Field(description="Calls holding a concurrency slot now (dialled, not yet ended).")
    dials: int = Field(description="Calls placed so far (all attempts).")
    done: int = Field(description="Contacts in a final status.")
    updated_at: datetime


class OrgCampaignSettings(ApiModel):
    max_concurrent_calls: int = Field(ge=1, le=10000, description="Campaign calls at once across the organisation.")


class DncEntryIn(ApiModel):
    phone: str = Field(min_length=3, max_length=40, examples=["+14155550123"])
    reason: str | None = Field(default=None, max_length=200)
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")


class DncEntryOut(BaseModel):
    phone: str
    reason: str | None = None
    source: Literal["api", "csv"] = "api"
    created_at: datetime
