"""Leases on live calls: each voice server says every few seconds which calls it carries (voice_server/lifecycle.py);
when its beats stop for longer than the lease it asked for, its calls are ended with `voice_server_lost` and their
campaign slots released (hooks in `on_lost`, set by backend/campaigns/runtime.py).

Ends go through the normal event ingest with the same event id a voice server would use (`{call_id}-ended`), so the
first end wins and nothing is stored twice. A backend that was itself unhealthy (database down, process restarted,
leadership just taken) cannot know whether beats were sent: a lease only counts as expired after lease_s of
continuous healthy observation, so an outage of the backend or FerretDB never ends live calls.

Leases are per process (VOICE_SERVER_ID + a random instance id): a server restarted under the same id is a new
instance, and the old one's calls end when the old lease runs out. Two live processes that share an id by mistake
never end each other's calls.

A call can also be open with no server carrying it: answered, but the carrier never opened the media stream and sent
no status callback (a misconfigured number, a dropped webhook). Once it is older than `orphan_after_s` and no beating
server lists it, it is ended as an `error`; otherwise it would sit in the live view and hold its campaign slot for
ever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from backend.db.collections import CALLS, Db
from backend.db.ids import utcnow
from backend.services.call_event_ingest import CallEventIngest
from core.call_events import (
    CallEnded,
    CallEvent,
    CallEventBatch,
    EndReason,
    VoiceServerHeartbeat,
    VoiceServerHeartbeatAck,
)

log = logging.getLogger(__name__)

VOICE_SERVERS = "voice_server_leases"  # _id = "{VOICE_SERVER_ID}/{instance id}": one small document per process
SOURCE = "call-lease-reaper"
# A gap this long between two reaper rounds means this replica was not watching (not leader, stalled).
OBSERVATION_GAP_S = 10.0
ORPHAN_SWEEP_EVERY_S = 30.0  # a scan of the open calls: not on every two-second round

LostCallHook = Callable[[dict[str, Any]], Awaitable[None]]


class CallLeases:
    def __init__(self, db: Db, ingest: CallEventIngest, orphan_after_s: float = 900.0) -> None:
        self._db = db
        self._ingest = ingest
        self._orphan_after_s = orphan_after_s
        self._orphans_swept_at = 0.0
        self.on_lost: list[LostCallHook] = []
        self._healthy_since: float | None = None
        self._last_round: float | None = None
        self.calls_ended = 0

    async def heartbeat(self, beat: VoiceServerHeartbeat) -> VoiceServerHeartbeatAck:
        now = utcnow()
        key = f"{beat.voice_server_id}/{beat.instance_id}"
        previous = await self._db[VOICE_SERVERS].find_one({"_id": key}, {"first_beat_at": 1})
        await self._db[VOICE_SERVERS].replace_one({"_id": key}, {
            "_id": key, "server_id": beat.voice_server_id, "instance_id": beat.instance_id, "calls": beat.calls,
            "lease_s": beat.lease_s, "draining": beat.draining, "beat_at": now, "url": beat.url,
            "first_beat_at": previous["first_beat_at"] if previous else now, "lost_at": None,
        }, upsert=True)
        return VoiceServerHeartbeatAck(lease_s=beat.lease_s, calls=len(beat.calls))

    async def reap_once(self) -> int:
        """One round on the leader: ends the calls of server instances whose lease ran out. Returns calls ended."""
        now = time.time()
        if self._last_round is None or now - self._last_round > OBSERVATION_GAP_S:
            self._healthy_since = now  # not watching until now: give every lease a full term from here
        try:
            instances = [doc async for doc in self._db[VOICE_SERVERS].find({"lost_at": None})]

            def expired(doc: dict[str, Any]) -> bool:
                observed_since = max(doc["beat_at"].timestamp(), self._healthy_since or now)
                return now - observed_since > float(doc.get("lease_s") or 30)

            live = [doc for doc in instances if not expired(doc)]
            ended = 0
            for doc in instances:
                if not expired(doc):
                    continue
                # Another live instance under the same VOICE_SERVER_ID (a restart, or a misconfigured twin) keeps
                # the calls it reports and every call that started once it was up.
                twins = [d for d in live if d["server_id"] == doc["server_id"]]
                keep = {call for twin in twins for call in twin.get("calls") or []}
                before = min([t["first_beat_at"] for t in twins], default=utcnow())
                ended += await self._end_calls(doc, keep, before, f"no heartbeat from voice server "
                                               f"{doc['server_id']} since {doc['beat_at'].isoformat()}")
                await self._db[VOICE_SERVERS].update_one({"_id": doc["_id"]}, {"$set": {"lost_at": utcnow()}})
            ended += await self._end_orphans(live, now)
            await self._db[VOICE_SERVERS].delete_many({"lost_at": {"$lt": utcnow() - timedelta(days=1)}})
        except Exception:
            self._healthy_since = None
            self._last_round = None  # the next successful round starts a fresh observation
            raise
        self._last_round = now
        return ended

    async def _end_calls(self, server: dict[str, Any], keep: set[str], before: Any, detail: str) -> int:
        server_id = server["server_id"]
        # Calls the server reported, and calls the database places on it (started after its last beat).
        open_calls = {doc["_id"]: doc async for doc in self._db[CALLS].find(
            {"voice_server_id": server_id, "ended_at": None, "started_at": {"$lt": before}},
            {"_id": 1, "started_at": 1, "campaign_id": 1, "contact_id": 1, "org_id": 1})}
        for call_id in server.get("calls") or []:
            if call_id not in open_calls:
                doc = await self._db[CALLS].find_one({"_id": call_id}, {"_id": 1, "started_at": 1, "campaign_id": 1,
                                                                         "contact_id": 1, "org_id": 1, "ended_at": 1})
                if doc is None or doc.get("ended_at") is None:  # not applied yet: its end waits for its start
                    open_calls[call_id] = doc or {"_id": call_id}
        for call_id in keep:
            open_calls.pop(call_id, None)
        return await self._end(open_calls, "voice_server_lost", detail)

    async def _end_orphans(self, live: list[dict[str, Any]], now: float) -> int:
        """Ends old open calls that no beating server lists. Only once this replica has watched for the whole
        orphan age, so every live server's listed calls are from a beat it saw."""
        if self._healthy_since is None or now - self._healthy_since < self._orphan_after_s \
                or now - self._orphans_swept_at < ORPHAN_SWEEP_EVERY_S:
            return 0
        self._orphans_swept_at = now
        carried = {call for doc in live for call in doc.get("calls") or []}
        cutoff = utcnow() - timedelta(seconds=self._orphan_after_s)
        orphans = {doc["_id"]: doc async for doc in self._db[CALLS].find(
            {"ended_at": None, "started_at": {"$lt": cutoff}},
            {"_id": 1, "started_at": 1, "campaign_id": 1, "contact_id": 1, "org_id": 1}) if doc["_id"] not in carried}
        return await self._end(orphans, "error", "no voice server carries this call: its media stream never "
                                                 "connected and no carrier status callback ended it")

    async def _end(self, open_calls: dict[str, dict[str, Any]], reason: EndReason, detail: str) -> int:
        if not open_calls:
            return 0
        now = utcnow()
        events: list[CallEvent] = []
        for call_id, doc in open_calls.items():
            started = doc.get("started_at")
            duration = max(0.0, (now - started).total_seconds()) if started is not None else 0.0
            events.append(CallEnded(event_id=f"{call_id}-ended"[:64], call_id=call_id, end_reason=reason,
                                    duration_s=min(duration, timedelta(days=1).total_seconds()),
                                    detail=detail[:1000]))
        for i in range(0, len(events), 500):
            await self._ingest.ingest(CallEventBatch(events=events[i:i + 500]), source=SOURCE)
        log.warning("%s: ended %d calls as %s", detail, len(events), reason)
        for doc in open_calls.values():
            if doc.get("campaign_id"):
                for hook in self.on_lost:
                    try:
                        await hook(doc)
                    except Exception:  # the dialer's own reaper still frees the slot after the call's lifetime
                        log.exception("releasing the campaign slot of lost call %s failed", doc["_id"])
        self.calls_ended += len(events)
        return len(events)
