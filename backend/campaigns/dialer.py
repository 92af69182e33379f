"""The dialer worker. Any number may run at once (in backend processes, or alone with `python -m backend.campaigns`).

One poll, per running campaign:
1. read the campaign (pause / resume / cancel are seen within one poll interval, and re-checked right before
   each dial);
2. count the slots in use for the campaign and its organisation, and start at most that many dials;
3. each dial: take a calls-per-second token and wait for its tick; take the contact's lease (only the holder writes
   the contact); re-read the contact and check it is still due, inside its calling window and not on the
   do-not-call list; take a campaign slot and an organisation slot; insert attempt n+1 (a given attempt can exist
   once, so a stale read can never dial twice); register the call with the backend; insert the `fate: send` mark
   (a reaper that gave the claim up first wins instead); and ask the carrier to place the call.
The call's slots stay taken until its final carrier callback (callbacks.py -> attempts.py) frees them.

The reaper part, run by every dialer, recovers what a dead dialer left behind: claims that never became a dial are
given up (the contact is due again, nothing was dialled); calls that were dialled but never reported back are given
up after ring timeout + call time limit + grace (the contact is not dialled again, as the call may have connected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.campaigns.attempts import AttemptFinalizer, AttemptResult, CallSink
from backend.campaigns.callbacks import CallbackUrls
from backend.campaigns.clock import Clock
from backend.campaigns.collections import (
    ATTEMPTS,
    CAMPAIGNS,
    CONTACTS,
    DNC,
    IMPORTS,
    LEASES,
    ORG_SETTINGS,
    SLOTS,
    attempt_id,
    dnc_id,
)
from backend.campaigns.coordination import Coordination, campaign_scope, org_scope
from backend.campaigns.models import AttemptOutcome, CallingWindows, CampaignSettingsFields, VoicemailPolicy
from backend.campaigns.phones import country_code_of
from backend.campaigns.settings import CampaignSettingsMixin
from backend.campaigns.signals import CampaignSignals
from backend.campaigns.windows import Spans, compile_windows, contact_timezone, window_state
from backend.db.collections import CALLS, PHONE_NUMBERS, Db
from backend.db.ids import new_id
from backend.models.internal import OutboundCallCreate
from telephony.base import CarrierError, OutboundCallRequest
from telephony.registry import CarrierClients, carrier_named

log = logging.getLogger(__name__)

# Carrier answers that mean the campaign's setup is wrong (credentials, account): pause rather than burn contacts.
_SETUP_ERRORS = {401, 402, 403}
REAP_RECHECK_S = 15.0  # how often a healthy-looking lease's marks are checked anyway
STANDBY_CLAIMS = 4  # claims per campaign kept ready for the next free slot (at least; half a second of dials)
LATE_TICK_S = 0.1  # a dial leaving later than this after its tick (or half a tick) takes a fresh token


def _on_time(tick: float, cps: float) -> bool:
    return time.time() - tick <= max(0.5 / cps, LATE_TICK_S)


@dataclass
class Candidate:
    id: str
    phone: str
    timezone: str | None
    next_attempt_at: datetime | None
    attempts: int
    window_open: bool = False
    window_until: datetime | None = None  # when the window state last computed changes (None: recompute)


@dataclass
class LocalWork:
    """This process's dials under way for a campaign; survives a reload of the campaign's settings."""

    starting: int = 0  # dial tasks that have not yet taken (or given up) their slots
    busy: set[str] = field(default_factory=set)  # contacts with a dial task here
    # One claim at a time looks for a slot (in arrival order): waiting claims do not all query at every wake-up.
    slot_turn: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class CampaignRun:
    """What one dialer knows about a running campaign between polls."""

    id: str
    org_id: str
    doc: dict[str, Any]
    settings: CampaignSettingsFields
    spans: Spans
    candidates: dict[str, Candidate] = field(default_factory=dict)
    refreshed: float = 0.0
    local: LocalWork = field(default_factory=lambda: LocalWork())
    numbers: list[dict[str, Any]] = field(default_factory=list)
    next_number: int = 0


@dataclass
class DialerStats:
    dials: int = 0
    claims_lost: int = 0
    late_ticks: int = 0
    # Milliseconds per dial, recent ones: claiming (lease, checks, slots, attempt), registering the call, the
    # carrier's create-call request.
    phases: dict[str, deque[float]] = field(default_factory=lambda: {
        k: deque(maxlen=500) for k in ("claim", "register", "pacing", "carrier")})

    def note(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phases[phase].append((now - since) * 1000)
        return now

    def summary(self) -> dict[str, float]:
        return {k: round(statistics.median(v), 1) for k, v in self.phases.items() if v}


class Dialer:
    def __init__(self, db: Db, settings: CampaignSettingsMixin, *, clock: Clock, calls: CallSink,
                 carriers: CarrierClients, finalizer: AttemptFinalizer, urls: CallbackUrls,
                 answer_base_url: str, signals: CampaignSignals, dialer_id: str | None = None,
                 over_budget: Callable[[str], Awaitable[tuple[bool, str]]] | None = None) -> None:
        self._db = db
        self._settings = settings
        self.clock = clock
        self._calls = calls
        self._carriers = carriers
        self._finalizer = finalizer
        self._urls = urls
        # Several voice servers: comma-separated, used in turn (a load balancer in front works as well).
        self._answer_bases = [u.strip().rstrip("/") for u in answer_base_url.split(",") if u.strip()]
        self._next_answer = 0
        self._signals = signals
        self._coord = Coordination(db)
        self.id = dialer_id or settings.dialer_id or f"dialer-{socket.gethostname()}-{os.getpid()}-{new_id()[:6]}"
        self._runs: dict[str, CampaignRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_beat = 0.0
        self._last_reap = 0.0
        self._org_caps: dict[str, int] = {}
        self._checked: dict[str, float] = {}  # attempt id -> when the reaper last looked at its marks
        self._stopping = False
        self._sent: set[str] = set()  # attempts the reaper saw dialled
        self._last_purge = 0.0
        self.stats = DialerStats()
        self._over_budget = over_budget  # org id -> (at its monthly budget, the reason shown on the campaign)

    # -- the loop ----------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        log.info("dialer %s started", self.id)
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dialer %s: poll failed", self.id)
                    await asyncio.sleep(1.0)
                # Standby claims are woken by a call ending; the poll itself keeps a steady pace.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.dialer_poll_interval_s)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Lets dials already under way finish (each is a few database writes and one carrier request); claims
        still waiting for a slot are given up at once (their contacts are due again for other dialers)."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=15)
        with contextlib.suppress(Exception):
            await self._coord.retire(self.id)
        log.info("dialer %s stopped", self.id)

    async def step(self) -> None:
        now = time.time()
        if now - self._last_beat >= self._settings.dialer_heartbeat_s:
            await self._coord.beat(self.id, {"host": socket.gethostname(), "pid": os.getpid()})
            self._last_beat = now
        if now - self._last_reap >= max(1.0, self._settings.dialer_heartbeat_s):
            self._last_reap = now
            await self.reap()
        await self._load_campaigns()
        for run in list(self._runs.values()):
            await self._fill(run)

    # -- campaigns and contacts --------------------------------------------------------------------------------
    async def _load_campaigns(self) -> None:
        running = {doc["_id"]: doc async for doc in self._db[CAMPAIGNS].find({"status": "running"})}
        for gone in set(self._runs) - set(running):
            del self._runs[gone]
        orgs: set[str] = set()
        for cid, doc in running.items():
            run = self._runs.get(cid)
            if run is None or run.doc.get("updated_at") != doc.get("updated_at"):
                settings = CampaignSettingsFields.model_validate(
                    {k: doc[k] for k in CampaignSettingsFields.model_fields if k in doc})
                fresh = CampaignRun(id=cid, org_id=doc["org_id"], doc=doc, settings=settings,
                                    spans=compile_windows(settings.windows))
                if run is not None:  # settings changed: keep what is under way, reread the contacts
                    fresh.candidates, fresh.local = run.candidates, run.local
                self._runs[cid] = fresh
            orgs.add(doc["org_id"])
        async for doc in self._db[ORG_SETTINGS].find({"_id": {"$in": sorted(orgs)}}):
            self._org_caps[doc["_id"]] = int(doc.get("max_concurrent_calls") or 0)
        if self._over_budget is not None:
            for org in sorted(orgs):
                over, reason = await self._over_budget(org)
                for run in [r for r in self._runs.values() if r.org_id == org] if over else []:
                    await self._pause(run, reason)
                    del self._runs[run.id]

    def _org_cap(self, org_id: str) -> int:
        return self._org_caps.get(org_id) or self._settings.campaign_org_max_concurrent_calls

    async def _refresh(self, run: CampaignRun) -> None:
        committed = {doc["_id"] async for doc in self._db[IMPORTS].find(
            {"campaign_id": run.id, "state": "committed"}, {"_id": 1})}
        importing = await self._db[IMPORTS].count_documents({"campaign_id": run.id, "state": "in_progress"})
        old = run.candidates
        candidates: dict[str, Candidate] = {}
        async for doc in self._db[CONTACTS].find(
            {"campaign_id": run.id, "status": "pending"},
            {"phone": 1, "timezone": 1, "next_attempt_at": 1, "attempts": 1, "import_id": 1},
        ):
            if doc.get("import_id") not in committed:
                continue
            previous = old.get(doc["_id"])
            candidates[doc["_id"]] = Candidate(
                id=doc["_id"], phone=doc["phone"], timezone=doc.get("timezone"),
                next_attempt_at=doc.get("next_attempt_at"), attempts=int(doc.get("attempts", 0)),
                window_open=previous.window_open if previous else False,
                window_until=previous.window_until if previous and previous.timezone == doc.get("timezone") else None)
        run.candidates = candidates
        run.refreshed = time.time()
        if not candidates and not run.local.busy and not importing:
            await self._maybe_complete(run)

    async def _maybe_complete(self, run: CampaignRun) -> None:
        if await self._db[LEASES].count_documents({"campaign_id": run.id}) > 0:
            return
        if await self._db[CONTACTS].count_documents({"campaign_id": run.id, "status": "pending"}) > 0:
            return
        doc = await self._db[CAMPAIGNS].find_one({"_id": run.id}, {"status": 1})
        if doc is None or doc.get("status") != "running":
            return
        now = self.clock.now()
        await self._db[CAMPAIGNS].update_one({"_id": run.id}, {"$set": {
            "status": "completed", "completed_at": now, "updated_at": now}})
        log.info("campaign %s completed", run.id)
        self._signals.changed(run.id)
        with contextlib.suppress(Exception):
            await self._calls.org_event(run.org_id, "campaign.completed", {"campaign_id": run.id},
                                        event_key=f"{run.id}:completed")

    def _due(self, run: CampaignRun, now: datetime) -> list[Candidate]:
        due: list[Candidate] = []
        windows: CallingWindows = run.settings.windows
        for cand in run.candidates.values():
            if cand.id in run.local.busy or (cand.next_attempt_at is not None and cand.next_attempt_at > now):
                continue
            if cand.window_until is None or cand.window_until <= now:
                cand.window_open, until = window_state(now, contact_timezone(windows, cand.timezone), run.spans)
                cand.window_until = until or datetime.max.replace(tzinfo=now.tzinfo)
            if cand.window_open:
                due.append(cand)
        epoch = datetime.min.replace(tzinfo=now.tzinfo)
        due.sort(key=lambda c: (c.next_attempt_at or epoch, c.id))
        return due

    async def _fill(self, run: CampaignRun) -> None:
        age = time.time() - run.refreshed
        refresh_s = self._settings.dialer_contact_refresh_s
        # Reading the contacts scans them all (FerretDB): do it when the cache runs short, or now and then to see
        # retries come due and contacts dialled by other dialers go.
        if age >= refresh_s * 5 or (age >= refresh_s and not run.candidates):
            await self._refresh(run)
        if not run.candidates:
            return
        cscope, oscope = campaign_scope(run.id), org_scope(run.org_id)
        in_use = await self._coord.slots_in_use([cscope, oscope])
        org_starting = sum(r.local.starting for r in self._runs.values() if r.org_id == run.org_id)
        cap = run.settings.max_concurrent_calls
        # A few claims wait ready ("standby") for the next free slot, so a freed slot is re-dialled without first
        # claiming a contact; the rest match the free slots.
        standby = min(cap, max(STANDBY_CLAIMS, math.ceil(run.settings.calls_per_second / 2)))
        free = min(cap + standby - in_use[cscope] - run.local.starting,
                   self._org_cap(run.org_id) + standby - in_use[oscope] - org_starting)
        if free <= 0:
            return
        due = self._due(run, self.clock.now())
        if len(due) < free and age >= refresh_s:
            await self._refresh(run)
            due = self._due(run, self.clock.now())
        if not due:
            return
        leased = {doc["_id"] async for doc in self._db[LEASES].find({"campaign_id": run.id}, {"_id": 1})}
        for cand in due:
            if free <= 0:
                break
            if cand.id in leased:
                continue
            free -= 1
            run.local.starting += 1
            run.local.busy.add(cand.id)
            task = asyncio.create_task(self._dial(run, cand), name=f"dial-{cand.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- one dial ----------------------------------------------------------------------------------------------
    async def _dial(self, run: CampaignRun, cand: Candidate) -> None:
        local = run.local
        starting = [True]  # still counted in local.starting (until the slots count the call)

        def started() -> None:
            if starting[0]:
                starting[0] = False
                local.starting -= 1

        try:
            await self._dial_inner(run, cand, started)
        except Exception:
            log.exception("dial of contact %s failed", cand.id)
        finally:
            started()
            local.busy.discard(cand.id)
            run.candidates.pop(cand.id, None)

    async def _dial_inner(self, run: CampaignRun, cand: Candidate, started: Callable[[], None]) -> None:
        """Claim (lease, checks, attempt), wait for slots, then place the call."""
        t0 = time.perf_counter()
        number = cand.attempts + 1
        aid = attempt_id(cand.id, number)
        lifetime_s = (run.settings.ring_timeout_s + run.settings.max_call_duration_s
                      + self._settings.dialer_lost_call_grace_s)
        lease = {"campaign_id": run.id, "org_id": run.org_id, "owner": self.id, "attempt_id": aid,
                 "lifetime_s": lifetime_s}
        if not await self._coord.take_lease(cand.id, lease):
            self.stats.claims_lost += 1
            return
        attempt_inserted = False
        try:
            contact, listed = await asyncio.gather(
                self._db[CONTACTS].find_one({"_id": cand.id}),
                self._db[DNC].find_one({"_id": dnc_id(run.org_id, cand.phone)}, {"_id": 1}))
            now = self.clock.now()
            if (contact is None or contact.get("status") != "pending" or int(contact.get("attempts", 0)) != cand.attempts
                    or (contact.get("next_attempt_at") is not None and contact["next_attempt_at"] > now)):
                self.stats.claims_lost += 1
                return
            if listed or (contact["phone"] != cand.phone and await self._db[DNC].find_one(
                    {"_id": dnc_id(run.org_id, contact["phone"])}, {"_id": 1})):
                await self._db[CONTACTS].update_one({"_id": cand.id}, {"$set": {
                    "status": "dnc", "last_outcome": None, "next_attempt_at": None, "updated_at": now}})
                log.info("contact %s is on the do-not-call list: skipped", cand.id)
                self._signals.changed(run.id)
                return
            caller = await self._caller_number(run, contact["phone"])
            if caller is None:
                await self._pause(run, "no usable caller-id number in the campaign's pool")
                return
            call_id = new_id()
            try:
                await self._db[ATTEMPTS].insert_one({
                    "_id": aid, "campaign_id": run.id, "org_id": run.org_id, "contact_id": cand.id, "attempt": number,
                    "to_number": contact["phone"], "from_number": caller["number"], "carrier": caller["carrier"],
                    "call_id": call_id, "owner": self.id, "claimed_at": now, "lifetime_s": lifetime_s,
                })
            except DuplicateKeyError:
                self.stats.claims_lost += 1  # attempt n exists: our read of the contact was stale
                return
            attempt_inserted = True
        finally:
            if not attempt_inserted:
                await self._coord.drop_lease(cand.id, aid)
        # From here on the attempt exists: every way out finalises it (here, or by a reaper if this process dies).
        self.stats.note("claim", t0)
        if self._settings.dialer_fault_pause_after_claim_s:
            await asyncio.sleep(self._settings.dialer_fault_pause_after_claim_s)
        if not await self._wait_for_slots(run, aid):
            await self._give_up(aid, "no slot came free while the claim waited, or the campaign stopped")
            return
        started()
        await self._place(run, contact, caller, aid, call_id, time.perf_counter())

    async def _wait_for_slots(self, run: CampaignRun, aid: str) -> bool:
        """Takes a campaign slot and an organisation slot for the attempt (both or neither).

        Waiting claims queue on the campaign's `slot_turn`: only the one at the head looks for a slot (one read of
        the slots for both scopes, every DIALER_SLOT_POLL_S, or at once when a call ending in this process frees
        one), so the database sees one small read per poll whatever the number of waiting claims."""
        holder = {"attempt_id": aid, "owner": self.id, "campaign_id": run.id}
        deadline = time.time() + self._settings.dialer_claim_ttl_s / 2
        cscope, oscope = campaign_scope(run.id), org_scope(run.org_id)
        status_checked = time.time()
        async with run.local.slot_turn:
            while True:
                ccap, ocap = run.settings.max_concurrent_calls, self._org_cap(run.org_id)
                taken = await self._coord.slots_taken([cscope, oscope])
                if len(taken[cscope]) < ccap and len(taken[oscope]) < ocap:
                    cslot, oslot = await asyncio.gather(
                        self._coord.acquire_slot(cscope, ccap, holder, taken[cscope]),
                        self._coord.acquire_slot(oscope, ocap, holder, taken[oscope]))
                    if cslot is not None and oslot is not None:
                        return True
                    await self._coord.release_slots([s for s in (cslot, oslot) if s is not None], aid)
                if time.time() > deadline or self._stopping:
                    return False
                await self._signals.wait(run.id, self._settings.dialer_slot_poll_s)
                # Pause / cancel (seen here within a poll interval; re-checked right before the dial anyway).
                if time.time() - status_checked >= self._settings.dialer_poll_interval_s:
                    status_checked = time.time()
                    current = await self._db[CAMPAIGNS].find_one({"_id": run.id}, {"status": 1})
                    if current is None or current.get("status") != "running":
                        return False

    async def _place(self, run: CampaignRun, contact: dict[str, Any], caller: dict[str, Any], aid: str,
                     call_id: str, slotted: float) -> None:
        cps = run.settings.calls_per_second
        # The call's registration and the first calls-per-second token at once (a token left unused by a failed
        # registration is one empty tick).
        registration, first_tick = await asyncio.gather(
            self._calls.register(OutboundCallCreate(
                org_id=run.org_id, agent_id=run.doc["agent_id"], from_number=caller["number"],
                to_number=contact["phone"], carrier=caller["carrier"], call_id=call_id, campaign_id=run.id,
                contact_id=contact["_id"], variables=dict(contact.get("variables") or {}))),
            self._coord.acquire_rate_token(run.id, cps), return_exceptions=True)
        if isinstance(registration, BaseException):
            await self._give_up(aid, f"could not register the call: {registration}")
            await self._pause(run, f"call registration failed: {registration}")
            return
        ctx = registration
        registered = self.stats.note("register", slotted)
        creds = ctx.agent.carrier_credentials
        if creds is None:
            await self._give_up(aid, f"no {caller['carrier']} credentials")
            await self._pause(run, f"the organisation has no {caller['carrier']} credentials")
            return
        # The calls-per-second token last, so dials leave on their ticks. A dial that would leave late (more than
        # half a tick, at least LATE_TICK_S: a slow database or event loop) takes a fresh token, so late dials do
        # not bunch up.
        for attempt in range(240):  # tokens are taken up to 2 s ahead; other dialers may hold the next ones
            tick = first_tick if attempt == 0 and isinstance(first_tick, float) else \
                await self._coord.acquire_rate_token(run.id, cps)
            if tick is None:
                await asyncio.sleep(0.25)
                continue
            # Pause / cancel take effect even for a dial that was already on its way.
            current, _ = await asyncio.gather(self._db[CAMPAIGNS].find_one({"_id": run.id}, {"status": 1}),
                                              asyncio.sleep(max(0.0, tick - time.time())))
            if current is None or current.get("status") != "running":
                await self._give_up(aid, "campaign no longer running")
                return
            if _on_time(tick, cps):
                break
            self.stats.late_ticks += 1
        else:
            await self._give_up(aid, "no calls-per-second token for a minute")
            return
        if not await self._coord.put_mark(aid, "fate", {"fate": "send", "owner": self.id, "campaign_id": run.id}):
            return  # a reaper gave this claim up first; it has finalised it
        # The fate write can itself be slow: committed to this dial, it waits for a fresh tick rather than leave late.
        for _ in range(240):
            if _on_time(tick, cps):
                break
            self.stats.late_ticks += 1
            fresh = await self._coord.acquire_rate_token(run.id, cps)
            if fresh is None:
                await asyncio.sleep(0.25)
                continue
            tick = fresh
            await asyncio.sleep(max(0.0, tick - time.time()))
        request = self._request(run, caller, contact["phone"], aid, call_id)
        client = self._carriers.for_credentials(creds)
        sent, sent_wall = time.perf_counter(), time.time()
        try:
            result = await client.create_call(request)
        except CarrierError as exc:
            outcome: AttemptOutcome = "throttled" if exc.status == 429 else "failed"
            await self._finalizer.finalize(aid, AttemptResult(outcome=outcome, detail=str(exc)))
            if exc.status in _SETUP_ERRORS:
                await self._pause(run, f"carrier refused the call: {exc}")
            return
        self.stats.phases["pacing"].append((sent - registered) * 1000)  # the token's tick, the status check
        self.stats.note("carrier", sent)
        self.stats.dials += 1
        if self.stats.dials % 100 == 0:
            log.info("dialer %s: %d dials; median ms per phase %s", self.id, self.stats.dials, self.stats.summary())
        await self._coord.put_mark(aid, "placed", {"campaign_id": run.id, "carrier_call_id": result.carrier_call_id,
                                                   "owner": self.id, "sent_wall": sent_wall, "tick": tick})

    def _request(self, run: CampaignRun, caller: dict[str, Any], to: str, aid: str, call_id: str
                 ) -> OutboundCallRequest:
        carrier = caller["carrier"]
        voicemail: VoicemailPolicy = run.settings.voicemail
        self._next_answer = (self._next_answer + 1) % len(self._answer_bases)
        base = self._answer_bases[self._next_answer]
        answer = carrier_named(carrier).answer_url(base, call_id)
        detection = "off"
        if voicemail.detect:
            detection = "detect_message_end" if voicemail.action == "leave_message" else "enable"
        return OutboundCallRequest(
            to_number=to, from_number=caller["number"], answer_url=answer,
            status_callback_url=self._urls.url(carrier, aid, "status"),
            # The dialer needs the answer and the end; initiated/ringing would only add callbacks to process.
            status_events=["answered", "completed"],
            ring_timeout_s=run.settings.ring_timeout_s, time_limit_s=run.settings.max_call_duration_s,
            machine_detection=detection,  # type: ignore[arg-type]
            machine_detection_url=self._urls.url(carrier, aid, "amd") if voicemail.detect else None,
        )

    async def _caller_number(self, run: CampaignRun, to: str) -> dict[str, Any] | None:
        if not run.numbers:
            ids = list(run.doc.get("caller_number_ids") or [])
            docs = [await self._db[PHONE_NUMBERS].find_one({"_id": i}) for i in ids]
            run.numbers = [d for d in docs if d is not None and d.get("org_id") == run.org_id]
        if not run.numbers:
            return None
        # Same country as the contact when the pool has one (local presence), else any; in rotation.
        country = country_code_of(to)
        local = [n for n in run.numbers if country_code_of(n["number"]) == country] or run.numbers
        run.next_number += 1
        return local[run.next_number % len(local)]

    async def _give_up(self, aid: str, detail: str) -> None:
        """Before `fate: send`: nothing was dialled, the contact is due again (or canceled with its campaign)."""
        if await self._coord.put_mark(aid, "fate", {"fate": "abandon", "owner": self.id, "detail": detail}):
            await self._finalizer.finalize(aid, AttemptResult(outcome="not_dialed", detail=detail))

    async def _pause(self, run: CampaignRun, reason: str) -> None:
        log.warning("pausing campaign %s: %s", run.id, reason)
        now = self.clock.now()
        doc = await self._db[CAMPAIGNS].find_one({"_id": run.id}, {"status": 1})
        if doc is not None and doc.get("status") == "running":
            await self._db[CAMPAIGNS].update_one({"_id": run.id}, {"$set": {
                "status": "paused", "paused_reason": reason[:300], "updated_at": now}})
            self._signals.changed(run.id)

    # -- recovery ----------------------------------------------------------------------------------------------
    async def reap(self) -> None:
        """Cheap when all is well: one read of the leases, the slots and the heartbeats; marks are only looked up
        for leases that look stuck (dead owner, old claim, past their lifetime) and, now and then, for the rest."""
        now = time.time()
        live = await self._coord.live_dialers(self._settings.dialer_dead_after_s)
        live.add(self.id)
        leases = [lease async for lease in self._db[LEASES].find({})]
        lease_attempts = {lease.get("attempt_id", "") for lease in leases}
        for lease in leases:
            aid = lease.get("attempt_id", "")
            age = now - lease["claimed_at"].timestamp()
            owner_dead = lease.get("owner") not in live
            # Dialled attempts (fate "send" seen) only matter again once their lifetime is over.
            stale_claim = aid not in self._sent and (owner_dead or age >= self._settings.dialer_claim_ttl_s)
            expired = age > float(lease.get("lifetime_s") or 3600)
            routine = now - self._checked.get(aid, lease["claimed_at"].timestamp()) > REAP_RECHECK_S
            if not (stale_claim or expired or routine):
                continue
            self._checked[aid] = now
            try:
                await self._reap_lease(lease, aid, owner_dead, age, now)
            except Exception:
                log.exception("reaping lease %s failed", lease["_id"])
        for gone in set(self._checked) - lease_attempts:
            del self._checked[gone]
        self._sent &= lease_attempts
        async for slot in self._db[SLOTS].find({}):
            aid = slot.get("attempt_id", "")
            if slot.get("api_call_id"):
                await self._reap_api_slot(slot, now)
                continue
            if aid in lease_attempts or now - slot["acquired_at"].timestamp() < 2:
                continue  # in use (released when its attempt is final), or just being taken
            # A slot without a lease: its call was finalised but the release was cut short, or a dialer died
            # between taking the slot and recording its claim.
            if await self._coord.get_mark(aid, "final") is not None or (
                    slot.get("owner") not in live
                    and await self._db[ATTEMPTS].find_one({"_id": aid}, {"_id": 1}) is None):
                await self._coord.release_slots([slot["_id"]], aid)
        if now - self._last_purge > 10:
            self._last_purge = now
            await self._coord.purge_rate_tokens()

    async def _reap_api_slot(self, slot: dict[str, Any], now: float) -> None:
        """A call placed through the API holds its slot until its call.ended is processed; if that release was
        lost (a backend stopped in between), the slot goes once the call has ended, never started (no call
        document a minute on), or outlived its ring timeout and maximum duration."""
        age = now - slot["acquired_at"].timestamp()
        call = await self._db[CALLS].find_one({"_id": slot["api_call_id"]}, {"ended_at": 1})
        if (call is not None and call.get("ended_at") is not None) or (call is None and age > 60) \
                or age > float(slot.get("lifetime_s") or 3600):
            await self._coord.release_slots([slot["_id"]], slot.get("attempt_id"))

    async def _reap_lease(self, lease: dict[str, Any], aid: str, owner_dead: bool, age: float, now: float) -> None:
        final = await self._coord.get_mark(aid, "final")
        if final is not None:
            if now - final["at"].timestamp() > 5:  # its finaliser died half-way: finish the job
                attempt = await self._db[ATTEMPTS].find_one({"_id": aid})
                if attempt is not None:
                    await self._finalizer.apply(attempt, final)
            return
        fate = await self._coord.get_mark(aid, "fate")
        if fate is not None and fate.get("fate") == "send":
            self._sent.add(aid)
        if fate is None:
            if not owner_dead and age < self._settings.dialer_claim_ttl_s:
                return
            attempt = await self._db[ATTEMPTS].find_one({"_id": aid}, {"_id": 1})
            if attempt is None:
                if age > 2:
                    slots = [s["_id"] async for s in self._db[SLOTS].find({"attempt_id": aid}, {"_id": 1})]
                    await self._coord.release_slots(slots, aid)
                    await self._coord.drop_lease(lease["_id"], aid)
                return
            if await self._coord.put_mark(aid, "fate", {"fate": "abandon", "owner": self.id,
                                                        "detail": "dialer stopped before dialling"}):
                log.info("recovered claim %s of dialer %s (never dialled)", aid, lease.get("owner"))
                await self._finalizer.finalize(aid, AttemptResult(outcome="not_dialed",
                                                                  detail="dialer stopped before dialling"))
            return
        if fate.get("fate") == "abandon":
            await self._finalizer.finalize(aid, AttemptResult(outcome="not_dialed", detail=fate.get("detail", "")))
            return
        lifetime = float(lease.get("lifetime_s") or 3600)
        if now - fate["at"].timestamp() > lifetime:
            log.warning("attempt %s: no final carrier callback after %.0f s; giving it up", aid, lifetime)
            await self._finalizer.finalize(aid, AttemptResult(outcome="lost", detail="no final carrier callback"))
