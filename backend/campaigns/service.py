"""Campaigns as the API sees them: create/edit, lifecycle (start, pause, resume, cancel), contact upload, progress,
the outcome report and the live event stream. The dialer (dialer.py) does the calling."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from backend.campaigns.attempts import CallSink
from backend.campaigns.clock import Clock
from backend.campaigns.collections import (
    CAMPAIGNS,
    CONTACTS,
    DNC,
    IMPORTS,
    LEASES,
    MARKS,
    ORG_SETTINGS,
    contact_id,
)
from backend.campaigns.contacts_import import ParsedList, parse_phone_list
from backend.campaigns.coordination import Coordination, campaign_scope, wall_now
from backend.campaigns.csv_io import write_safe_csv
from backend.campaigns.models import (
    TERMINAL_CONTACT_STATUSES,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ContactOut,
    ImportReport,
    OrgCampaignSettings,
    Progress,
    RowError,
)
from backend.campaigns.settings import CampaignSettingsMixin
from backend.campaigns.signals import CampaignSignals
from backend.db.collections import AGENTS, CALL_ANALYSES, PHONE_NUMBERS, Db
from backend.db.ids import new_id
from backend.db.writes import insert_many_ignoring_duplicates
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.models.common import Page
from backend.security.permissions import Principal
from backend.services.audit import AuditLog

log = logging.getLogger(__name__)

INSERT_CHUNK = 1000
STALE_IMPORT = timedelta(minutes=10)
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("draft", "running", "paused"), "canceled"),
}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "validation_error", "query.cursor: not a cursor from this API",
                       [ErrorDetail(path="query.cursor", message="not a cursor from this API")]) from None


def row_errors_to_details(errors: list[RowError]) -> list[ErrorDetail]:
    details = []
    for err in errors:
        path = f"file.rows[{err.row}]" + (f".{err.column}" if err.column else "")
        message = err.message + (f" (value: {err.value!r})" if err.value else "")
        details.append(ErrorDetail(path=path, message=message, type="invalid_row"))
    return details


class CampaignService:
    def __init__(self, db: Db, settings: CampaignSettingsMixin, clock: Clock, signals: CampaignSignals,
                 coord: Coordination, audit: AuditLog, calls: CallSink | None) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._signals = signals
        self._coord = coord
        self._audit = audit
        self._calls = calls

    @property
    def csv_max_bytes(self) -> int:
        return self._settings.campaign_csv_max_bytes

    # -- campaigns ---------------------------------------------------------------------------------------------
    async def _owned(self, principal: Principal, campaign_id: str) -> dict[str, Any]:
        doc = await self._db[CAMPAIGNS].find_one({"_id": campaign_id})
        if doc is None or doc["org_id"] != principal.org_id or doc.get("deleted_at") is not None:
            raise not_found("Campaign")
        return doc

    async def _check_refs(self, principal: Principal, agent_id: str | None, number_ids: list[str] | None) -> None:
        if agent_id is not None:
            agent = await self._db[AGENTS].find_one({"_id": agent_id}, {"org_id": 1, "deleted_at": 1})
            if agent is None or agent["org_id"] != principal.org_id or agent.get("deleted_at") is not None:
                raise ApiError(422, "validation_error", "body.agent_id: no such agent in this organisation",
                               [ErrorDetail(path="body.agent_id", message="no such agent in this organisation",
                                            type="not_found")])
        for i, number_id in enumerate(number_ids or []):
            number = await self._db[PHONE_NUMBERS].find_one({"_id": number_id}, {"org_id": 1})
            if number is None or number["org_id"] != principal.org_id:
                path = f"body.caller_number_ids.{i}"
                raise ApiError(422, "validation_error", f"{path}: no such phone number in this organisation",
                               [ErrorDetail(path=path, message="no such phone number in this organisation",
                                            type="not_found")])
        if number_ids is not None and len(set(number_ids)) != len(number_ids):
            raise ApiError(422, "validation_error", "body.caller_number_ids: listed twice",
                           [ErrorDetail(path="body.caller_number_ids", message="a number is listed twice")])

    async def _out(self, doc: dict[str, Any]) -> CampaignOut:
        contacts = 0
        async for imp in self._db[IMPORTS].find({"campaign_id": doc["_id"], "state": "committed"}, {"imported": 1}):
            contacts += int(imp.get("imported", 0))
        return CampaignOut.model_validate({**doc, "id": doc["_id"], "contact_count": contacts})

    async def create(self, principal: Principal, body: CampaignCreate) -> CampaignOut:
        await self._check_refs(principal, body.agent_id, body.caller_number_ids)
        now = self._clock.now()
        doc = {"_id": new_id(), "org_id": principal.org_id, **body.model_dump(mode="json"), "status": "draft",
               "created_at": now, "updated_at": now, "created_by": principal.actor, "deleted_at": None}
        await self._db[CAMPAIGNS].insert_one(doc)
        await self._audit.record(principal.org_id, principal, "campaign.created", "campaign", doc["_id"],
                                 {"name": body.name})
        return await self._out(doc)

    async def list(self, principal: Principal) -> list[CampaignOut]:
        cursor = self._db[CAMPAIGNS].find({"org_id": principal.org_id, "deleted_at": None}).sort("created_at", -1)
        return [await self._out(doc) async for doc in cursor]

    async def get(self, principal: Principal, campaign_id: str) -> CampaignOut:
        return await self._out(await self._owned(principal, campaign_id))

    async def update(self, principal: Principal, campaign_id: str, body: CampaignUpdate) -> CampaignOut:
        doc = await self._owned(principal, campaign_id)
        if doc["status"] in ("completed", "canceled"):
            raise conflict(f"A {doc['status']} campaign cannot be changed", code="campaign_finished")
        changes = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        await self._check_refs(principal, changes.get("agent_id"), changes.get("caller_number_ids"))
        if changes:
            changes["updated_at"] = self._clock.now()
            await self._db[CAMPAIGNS].update_one({"_id": campaign_id}, {"$set": changes})
            doc.update(changes)
            await self._audit.record(principal.org_id, principal, "campaign.updated", "campaign", campaign_id,
                                     {"fields": sorted(k for k in changes if k != "updated_at")})
            self._signals.changed(campaign_id)
        return await self._out(doc)

    async def delete(self, principal: Principal, campaign_id: str) -> None:
        doc = await self._owned(principal, campaign_id)
        if doc["status"] in ("running", "paused"):
            raise conflict("Cancel the campaign before deleting it", code="campaign_active")
        if await self._db[LEASES].count_documents({"campaign_id": campaign_id}):
            raise conflict("The campaign still has calls in progress", code="campaign_active")
        now = self._clock.now()
        await self._db[CAMPAIGNS].update_one({"_id": campaign_id}, {"$set": {"deleted_at": now, "updated_at": now}})
        await self._db[CONTACTS].delete_many({"campaign_id": campaign_id})
        await self._audit.record(principal.org_id, principal, "campaign.deleted", "campaign", campaign_id)

    async def transition(self, principal: Principal, campaign_id: str, action: str) -> CampaignOut:
        doc = await self._owned(principal, campaign_id)
        allowed, target = _TRANSITIONS[action]
        if doc["status"] == target:
            return await self._out(doc)  # repeating a request is harmless
        if doc["status"] not in allowed:
            raise conflict(f"Cannot {action} a {doc['status']} campaign", code="invalid_transition")
        if action == "start" and not await self._db[IMPORTS].find_one(
                {"campaign_id": campaign_id, "state": "committed", "imported": {"$gt": 0}}, {"_id": 1}):
            raise conflict("Upload contacts before starting the campaign", code="no_contacts")
        now = self._clock.now()
        changes: dict[str, Any] = {"status": target, "updated_at": now, "paused_reason": None}
        if action == "start":
            changes["started_at"] = now
        if action == "cancel":
            changes["canceled_at"] = now
        await self._db[CAMPAIGNS].update_one({"_id": campaign_id}, {"$set": changes})
        doc.update(changes)
        await self._audit.record(principal.org_id, principal, f"campaign.{action}", "campaign", campaign_id)
        self._signals.changed(campaign_id)
        if self._calls is not None:
            event = {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "canceled"}[action]
            with contextlib.suppress(Exception):
                await self._calls.org_event(principal.org_id, f"campaign.{event}", {"campaign_id": campaign_id},
                                            event_key=f"{campaign_id}:{event}:{now.timestamp()}")
        return await self._out(doc)

    # -- contacts ----------------------------------------------------------------------------------------------
    async def import_contacts(self, principal: Principal, campaign_id: str, data: bytes, phone_column: str | None,
                              default_region: str | None) -> ImportReport:
        doc = await self._owned(principal, campaign_id)
        if doc["status"] not in ("draft", "running", "paused"):
            raise conflict(f"Contacts cannot be added to a {doc['status']} campaign", code="campaign_finished")
        if len(data) > self._settings.campaign_csv_max_bytes:
            raise ApiError(413, "payload_too_large",
                           f"file is larger than {self._settings.campaign_csv_max_bytes} bytes")
        region = default_region or doc.get("default_region") or "US"
        parsed = await asyncio.to_thread(parse_phone_list, data, default_region=region, phone_column=phone_column,
                                         max_rows=self._settings.campaign_csv_max_rows)
        import_id = new_id()
        base = {"_id": import_id, "org_id": principal.org_id, "campaign_id": campaign_id,
                "created_at": self._clock.now(), "created_by": principal.actor, **_report_fields(parsed)}
        if parsed.error_count:
            await self._db[IMPORTS].insert_one({**base, "state": "rejected",
                                                "errors": [e.model_dump() for e in parsed.errors]})
            shown = "; ".join(f"row {e.row}: {e.message}" for e in parsed.errors[:3])
            raise ApiError(422, "invalid_csv",
                           f"{parsed.error_count} invalid row(s), nothing was imported (import {import_id}): {shown}",
                           row_errors_to_details(parsed.errors),
                           headers={"X-Import-Id": import_id,
                                    "Location": f"/api/v1/campaigns/{campaign_id}/imports/{import_id}"})
        lock = f"import:{campaign_id}"
        if not await self._coord.lock(lock, import_id, ttl_s=STALE_IMPORT.total_seconds()):
            raise conflict("Another upload to this campaign is in progress; try again when it has finished",
                           code="import_in_progress")
        try:
            await self._roll_back_stale_imports(campaign_id)
            await self._db[IMPORTS].insert_one({**base, "state": "in_progress"})
            try:
                present = await self._insert_contacts(principal.org_id, campaign_id, import_id, parsed)
            except Exception:
                await self._db[CONTACTS].delete_many({"import_id": import_id})
                await self._db[IMPORTS].update_one({"_id": import_id}, {"$set": {"state": "failed"}})
                raise
            imported = len(parsed.contacts) - present
            listed = {d["phone"] async for d in self._db[DNC].find({"org_id": principal.org_id}, {"phone": 1})}
            on_dnc = sum(1 for c in parsed.contacts if c.phone in listed)
            # Committing the import is one write: its contacts become visible to the dialer all at once.
            await self._db[IMPORTS].update_one({"_id": import_id}, {"$set": {
                "state": "committed", "imported": imported, "already_present": present, "on_dnc_list": on_dnc,
                "committed_at": self._clock.now()}})
        finally:
            await self._coord.unlock(lock, import_id)
        await self._audit.record(principal.org_id, principal, "campaign.contacts_imported", "campaign", campaign_id,
                                 {"import_id": import_id, "imported": imported})
        self._signals.changed(campaign_id)
        return ImportReport(import_id=import_id, imported=imported, already_present=present, on_dnc_list=on_dnc,
                            **_report_fields(parsed))

    async def _insert_contacts(self, org_id: str, campaign_id: str, import_id: str, parsed: ParsedList) -> int:
        now = self._clock.now()
        docs = [{
            "_id": contact_id(campaign_id, c.phone), "org_id": org_id, "campaign_id": campaign_id,
            "import_id": import_id, "row": c.row, "phone": c.phone, "variables": c.variables, "timezone": c.timezone,
            "status": "pending", "attempts": 0, "dials": 0, "next_attempt_at": None, "last_outcome": None,
            "last_attempt_id": None, "last_call_id": None, "created_at": now, "updated_at": now,
        } for c in parsed.contacts]
        present = 0
        for start in range(0, len(docs), INSERT_CHUNK):
            present += len(await insert_many_ignoring_duplicates(self._db, CONTACTS, docs[start:start + INSERT_CHUNK]))
        return present

    async def _roll_back_stale_imports(self, campaign_id: str) -> None:
        """An upload whose process died before committing: its contacts go, as if it never happened."""
        cutoff = self._clock.now() - STALE_IMPORT
        async for imp in self._db[IMPORTS].find({"campaign_id": campaign_id, "state": "in_progress"}):
            if imp["created_at"] < cutoff:
                await self._db[CONTACTS].delete_many({"import_id": imp["_id"]})
                await self._db[IMPORTS].update_one({"_id": imp["_id"]}, {"$set": {"state": "failed"}})

    async def import_report(self, principal: Principal, campaign_id: str, import_id: str) -> ImportReport:
        doc = await self._db[IMPORTS].find_one({"_id": import_id})
        if doc is None or doc["org_id"] != principal.org_id or doc["campaign_id"] != campaign_id:
            raise not_found("Import")
        return ImportReport.model_validate({**doc, "import_id": doc["_id"],
                                            "errors": doc.get("errors") or []})

    async def import_errors_csv(self, principal: Principal, campaign_id: str, import_id: str) -> str:
        report = await self.import_report(principal, campaign_id, import_id)
        return write_safe_csv(["row", "column", "message", "value"],
                              ([e.row, e.column or "", e.message, e.value or ""] for e in report.errors))

    async def _committed_imports(self, campaign_id: str) -> set[str]:
        return {d["_id"] async for d in self._db[IMPORTS].find({"campaign_id": campaign_id, "state": "committed"},
                                                               {"_id": 1})}

    async def _overlay(self, campaign: dict[str, Any]) -> tuple[set[str], bool]:
        leased = {d["_id"] async for d in self._db[LEASES].find({"campaign_id": campaign["_id"]}, {"_id": 1})}
        return leased, campaign["status"] == "canceled"

    def _shown_status(self, doc: dict[str, Any], leased: set[str], canceled: bool) -> str:
        status = str(doc.get("status", "pending"))
        if status == "pending" and doc["_id"] in leased:
            return "dialing"
        if status == "pending" and canceled:
            return "canceled"
        return status

    async def contacts(self, principal: Principal, campaign_id: str, status: str | None, cursor: str | None,
                       limit: int) -> Page[ContactOut]:
        campaign = await self._owned(principal, campaign_id)
        committed = await self._committed_imports(campaign_id)
        leased, canceled = await self._overlay(campaign)
        offset = decode_cursor(cursor)
        items: list[ContactOut] = []
        seen = 0
        query = self._db[CONTACTS].find({"campaign_id": campaign_id}).sort([("created_at", 1), ("row", 1), ("_id", 1)])
        async for doc in query:
            if doc.get("import_id") not in committed:
                continue
            shown = self._shown_status(doc, leased, canceled)
            if status is not None and shown != status:
                continue
            seen += 1
            if seen <= offset:
                continue
            if len(items) == limit:
                return Page(items=items, next_cursor=encode_cursor(offset + limit))
            items.append(_contact_out(doc, shown))
        return Page(items=items, next_cursor=None)

    # -- progress, report, events ------------------------------------------------------------------------------
    async def progress_of(self, campaign: dict[str, Any]) -> Progress:
        cid = campaign["_id"]
        committed = await self._committed_imports(cid)
        leased, canceled = await self._overlay(campaign)
        by_status: dict[str, int] = {}
        dials = 0
        # Grouped by the dial count too rather than summing it: FerretDB 1.x answers 0 for {"$sum": "$field"}.
        pipeline = [{"$match": {"campaign_id": cid}},
                    {"$group": {"_id": {"s": "$status", "i": "$import_id", "d": "$dials"}, "n": {"$sum": 1}}}]
        async for row in await self._db[CONTACTS].aggregate(pipeline):
            key = row["_id"] or {}
            if key.get("i") not in committed:
                continue
            status = str(key.get("s"))
            if status == "pending" and canceled:
                status = "canceled"
            by_status[status] = by_status.get(status, 0) + int(row["n"])
            dials += int(key.get("d") or 0) * int(row["n"])
        dialing = len(leased)
        if dialing and not canceled:
            by_status["pending"] = max(0, by_status.get("pending", 0) - dialing)
        if dialing:
            by_status["dialing"] = dialing
        live = (await self._coord.slots_in_use([campaign_scope(cid)]))[campaign_scope(cid)]
        total = sum(by_status.values())
        done = sum(n for s, n in by_status.items() if s in TERMINAL_CONTACT_STATUSES)
        return Progress(campaign_id=cid, status=campaign["status"], total=total,
                        by_status={k: v for k, v in sorted(by_status.items()) if v}, live_calls=live, dials=dials,
                        done=done, updated_at=wall_now())

    async def progress(self, principal: Principal, campaign_id: str) -> Progress:
        return await self.progress_of(await self._owned(principal, campaign_id))

    async def report_csv(self, principal: Principal, campaign_id: str) -> str:
        campaign = await self._owned(principal, campaign_id)
        committed = await self._committed_imports(campaign_id)
        leased, canceled = await self._overlay(campaign)
        history: dict[str, list[tuple[int, str]]] = {}
        async for mark in self._db[MARKS].find({"campaign_id": campaign_id, "kind": "final"},
                                               {"contact_id": 1, "attempt": 1, "outcome": 1}):
            history.setdefault(mark["contact_id"], []).append((int(mark.get("attempt", 0)), str(mark["outcome"])))
        contacts = [doc async for doc in self._db[CONTACTS].find({"campaign_id": campaign_id})
                    .sort([("created_at", 1), ("row", 1), ("_id", 1)]) if doc.get("import_id") in committed]
        variables = sorted({k for doc in contacts for k in (doc.get("variables") or {})})
        # The post-call analysis of each contact's last call (backend/services/call_analysis.py), when there is one.
        analyses = {doc["_id"]: doc async for doc in self._db[CALL_ANALYSES].find(
            {"campaign_id": campaign_id, "status": "done"})}
        fields = sorted({k for a in analyses.values() for k in (a.get("data") or {})})
        header = ["contact_id", "phone", "status", "dials", "last_outcome", "outcomes", "last_call_id",
                  "updated_at", *variables, "analysis_success", "analysis_summary", *(f"data_{f}" for f in fields)]
        rows = []
        for doc in contacts:
            outcomes = ";".join(o for _, o in sorted(history.get(doc["_id"], [])))
            analysis = analyses.get(doc.get("last_call_id") or "", {})
            data = analysis.get("data") or {}
            rows.append([doc["_id"], doc["phone"], self._shown_status(doc, leased, canceled), doc.get("dials", 0),
                         doc.get("last_outcome") or "", outcomes, doc.get("last_call_id") or "",
                         doc["updated_at"].isoformat(), *((doc.get("variables") or {}).get(v, "") for v in variables),
                         "" if analysis.get("success") is None else analysis["success"], analysis.get("summary", ""),
                         *("" if data.get(f) is None else data[f] for f in fields)])
        return write_safe_csv(header, rows)

    async def events(self, principal: Principal, campaign_id: str, is_disconnected: Any,
                     heartbeat_s: float = 15.0, poll_s: float = 1.0) -> AsyncIterator[str]:
        """Server-sent events: `progress` whenever the counters change, `end` once the campaign is over."""
        await self._owned(principal, campaign_id)
        last = ""
        sent_at = 0.0
        loop = asyncio.get_running_loop()
        seq = 0
        while True:
            if await is_disconnected():
                return
            campaign = await self._db[CAMPAIGNS].find_one({"_id": campaign_id})
            if campaign is None:
                return
            progress = await self.progress_of(campaign)
            body = progress.model_dump(mode="json")
            key = json.dumps({k: v for k, v in body.items() if k != "updated_at"}, sort_keys=True)
            if key != last:
                seq += 1
                last = key
                sent_at = loop.time()
                yield f"id: {seq}\nevent: progress\ndata: {json.dumps(body)}\n\n"
            elif loop.time() - sent_at >= heartbeat_s:
                sent_at = loop.time()
                yield ": keep-alive\n\n"
            if progress.status in ("completed", "canceled") and progress.live_calls == 0:
                yield f"event: end\ndata: {json.dumps({'status': progress.status})}\n\n"
                return
            await self._signals.wait(campaign_id, poll_s)

    # -- organisation settings ---------------------------------------------------------------------------------
    async def org_settings(self, principal: Principal) -> OrgCampaignSettings:
        doc = await self._db[ORG_SETTINGS].find_one({"_id": principal.org_id})
        return OrgCampaignSettings(max_concurrent_calls=int((doc or {}).get("max_concurrent_calls")
                                                            or self._settings.campaign_org_max_concurrent_calls))

    async def put_org_settings(self, principal: Principal, body: OrgCampaignSettings) -> OrgCampaignSettings:
        await self._db[ORG_SETTINGS].update_one({"_id": principal.org_id}, {"$set": {
            "max_concurrent_calls": body.max_concurrent_calls, "updated_at": self._clock.now(),
            "updated_by": principal.actor}}, upsert=True)
        await self._audit.record(principal.org_id, principal, "campaign_settings.updated", "organization",
                                 principal.org_id, body.model_dump())
        return body


def _report_fields(parsed: ParsedList) -> dict[str, Any]:
    return {"rows": parsed.rows, "duplicates_in_file": parsed.duplicates_in_file, "phone_column": parsed.phone_column,
            "variables": parsed.variables, "encoding": parsed.encoding, "delimiter": parsed.delimiter,
            "error_count": parsed.error_count}


def _contact_out(doc: dict[str, Any], status: str) -> ContactOut:
    return ContactOut.model_validate({
        "id": doc["_id"], "phone": doc["phone"], "variables": doc.get("variables") or {},
        "timezone": doc.get("timezone"), "status": status, "dials": int(doc.get("dials", 0)),
        "next_attempt_at": doc.get("next_attempt_at"), "last_outcome": doc.get("last_outcome"),
        "last_call_id": doc.get("last_call_id"), "row": doc.get("row"), "updated_at": doc["updated_at"],
    })
