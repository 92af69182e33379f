"""Finishing a dial attempt, exactly once, whoever notices first: the carrier's final callback, the dialer (the
carrier refused the call), or the reaper (a dialer died before dialling, or the carrier never reported back).

The first to insert the attempt's `final` mark decides the outcome and the contact's next state; `apply` then
writes the contact, frees the concurrency slots and drops the contact's lease. `apply` is idempotent, so if the
finaliser dies half-way the reaper simply runs it again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from backend.campaigns.clock import Clock
from backend.campaigns.collections import ATTEMPTS, CAMPAIGNS, CONTACTS
from backend.campaigns.coordination import Coordination
from backend.campaigns.models import AttemptOutcome, RetryPolicy
from backend.campaigns.outcomes import next_contact_state
from backend.campaigns.signals import CampaignSignals
from backend.db.collections import CALLS, Db
from backend.models.internal import OutboundCallCreate
from core.call_events import EndReason, OutboundCallContext

log = logging.getLogger(__name__)

# The call log learns how never-connected calls ended from the dialer; connected ones from the voice server.
_END_REASON: dict[str, EndReason] = {
    "busy": "busy", "no_answer": "no_answer", "failed": "failed", "canceled": "canceled", "lost": "failed",
    "not_dialed": "failed", "throttled": "failed", "voicemail": "voicemail",
}


class CallSink(Protocol):
    """The backend's call log and webhooks, as the dialer needs them."""

    async def register(self, body: OutboundCallCreate) -> OutboundCallContext: ...

    async def ended(self, call_id: str, reason: EndReason, at: datetime, detail: str, event_key: str) -> None: ...

    async def org_event(self, org_id: str, type_: str, data: dict[str, Any], event_key: str) -> None: ...


@dataclass
class AttemptResult:
    outcome: AttemptOutcome
    detail: str = ""
    answered_by: str | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None


class AttemptFinalizer:
    def __init__(self, db: Db, coord: Coordination, clock: Clock, calls: CallSink | None,
                 signals: CampaignSignals) -> None:
        self._db = db
        self._coord = coord
        self.clock = clock
        self._calls = calls
        self._signals = signals

    async def finalize(self, attempt_id: str, result: AttemptResult, attempt: dict[str, Any] | None = None) -> bool:
        """True when this call decided the attempt (False: unknown attempt, or already final). `attempt`: its
        document, when the caller has just read it (an attempt never changes once inserted).

        A carrier's final callback frees the call's slots here: the reads it needs go out together, not one after
        the other, since the next dial waits on them."""
        if attempt is None:
            attempt = await self._db[ATTEMPTS].find_one({"_id": attempt_id})
            if attempt is None:
                return False
        already, contact, campaign = await asyncio.gather(
            self._coord.get_mark(attempt_id, "final"),
            self._db[CONTACTS].find_one({"_id": attempt["contact_id"]}),
            self._db[CAMPAIGNS].find_one({"_id": attempt["campaign_id"]}))
        if already is not None:
            return False
        contact, campaign = contact or {}, campaign or {}
        ended = result.ended_at or self.clock.now()
        nxt = next_contact_state(result.outcome, int(contact.get("dials", 0)), campaign.get("status", "canceled"),
                                 RetryPolicy.model_validate(campaign.get("retry") or {}), ended)
        final = {
            "campaign_id": attempt["campaign_id"], "contact_id": attempt["contact_id"], "org_id": attempt["org_id"],
            "attempt": attempt["attempt"], "call_id": attempt["call_id"], "outcome": result.outcome,
            "detail": result.detail[:500], "answered_by": result.answered_by, "ended_at": ended,
            "duration_s": result.duration_s, "status": nxt.status, "next_attempt_at": nxt.next_attempt_at,
            "dials": nxt.dials,
        }
        if not await self._coord.put_mark(attempt_id, "final", final):
            return False
        log.info("attempt %s -> %s (contact now %s)", attempt_id, result.outcome, nxt.status)
        await self.apply(attempt, final)
        return True

    async def apply(self, attempt: dict[str, Any], final: dict[str, Any]) -> None:
        attempt_id = attempt["_id"]
        # The slots first, and the dialer woken at once: the next call need not wait for the contact's write.
        await self._coord.release_attempt_slots(attempt_id)
        self._signals.changed(attempt["campaign_id"])
        contact = await self._db[CONTACTS].find_one({"_id": attempt["contact_id"]}, {"attempts": 1})
        if contact is not None and int(contact.get("attempts", 0)) < int(attempt["attempt"]):
            await self._db[CONTACTS].update_one({"_id": attempt["contact_id"]}, {"$set": {
                "status": final["status"], "attempts": attempt["attempt"], "dials": final["dials"],
                "next_attempt_at": final["next_attempt_at"], "last_outcome": final["outcome"],
                "last_attempt_id": attempt_id, "last_call_id": attempt["call_id"], "updated_at": self.clock.now(),
            }})
        await self._coord.drop_lease(attempt["contact_id"], attempt_id)
        self._signals.changed(attempt["campaign_id"])
        reason = _END_REASON.get(final["outcome"])
        if reason is not None and final["outcome"] == "not_dialed" and await self._db[CALLS].find_one(
                {"_id": attempt["call_id"]}, {"_id": 1}) is None:
            reason = None  # given up before the call was registered: the call log never knew it
        if reason is not None and self._calls is not None:
            at = final["ended_at"]
            if final["outcome"] == "voicemail":
                amd = await self._coord.get_mark(attempt_id, "amd")
                at = amd["at"] if amd else at  # earlier than the voice server's end, so it names the call's end
            try:
                await self._calls.ended(attempt["call_id"], reason, at, final.get("detail") or final["outcome"],
                                        event_key=f"{attempt_id}:end")
            except Exception as exc:  # the call log catches up on the reaper's re-apply; never block the slot
                log.warning("could not record the end of call %s: %s", attempt["call_id"], exc)
