"""Calls for operators: list (read model), detail, recordings (presigned or streamed with Range), CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.db.collections import (
    AGENT_VERSIONS,
    AGENTS,
    CALL_ANALYSES,
    CALL_RECORDINGS,
    CALL_TURNS,
    CALLS,
    CALLS_ARCHIVE,
    ORG_SPEND,
    Db,
)
from backend.db.tiered import Tiered
from backend.errors import ApiError, not_found
from backend.models.calls import (
    CallAnalysisOut,
    CallDetail,
    CallFilters,
    CallSummary,
    DegradationOut,
    FlowStepOut,
    RecordingInfo,
    RecordingLink,
    ToolCallOut,
    TurnOut,
)
from backend.models.common import Page
from backend.security.permissions import Principal
from backend.services.billing import BillingService, call_cost
from backend.services.call_log import CallLog, summary_of
from backend.services.erasure import is_erased
from backend.services.transcripts import load_transcript
from core.call_events import UsageUnits
from core.storage import ObjectStore

SEARCH_MATCH_LIMIT = 5000
EXPORT_MAX_ROWS = 100_000
STREAM_CHUNK = 1024 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

EXPORT_COLUMNS = [
    "id", "created_at", "direction", "status", "answered", "end_reason", "duration_s", "from_number", "to_number",
    "agent_id", "agent_name", "agent_version", "campaign_id", "contact_id", "carrier", "started_at", "ended_at",
]


def neutralise_cell(value: Any) -> str:
    """Spreadsheets run cells that start with = + - @ (and tab/CR) as formulas; a leading quote makes them text."""
    text = "" if value is None else (value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range (the form players send). None: the whole object. Raises 416 when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    unsatisfiable = ApiError(416, "range_not_satisfiable", "Requested range not satisfiable",
                             headers={"Content-Range": f"bytes */{size}"})
    if not match or (not match.group(1) and not match.group(2)):
        raise unsatisfiable
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
    else:  # suffix: the last N bytes
        suffix = int(match.group(2))
        if suffix == 0:
            raise unsatisfiable
        start, end = max(0, size - suffix), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        raise unsatisfiable
    return ByteRange(start, end)


@dataclass
class RecordingStream:
    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]


class CallHistoryService:
    def __init__(self, db: Db, store: ObjectStore, call_log: CallLog, recording_url_ttl_s: int,
                 billing: BillingService) -> None:
        self._db = db
        self._billing = billing
        self._store = store
        self._log = call_log
        self._url_ttl_s = recording_url_ttl_s
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    async def _call(self, principal: Principal, call_id: str) -> dict[str, Any]:
        doc = await self._calls.find_one(call_id)
        if doc is None or doc["org_id"] != principal.org_id or await is_erased(self._db, call_id):
            raise not_found("Call")
        return doc

    async def _search_ids(self, principal: Principal, filters: CallFilters) -> set[str] | None:
        """The calls a transcript search and/or the analysis verdict allow (None: no such filter)."""
        found: set[str] | None = None
        if filters.q:
            query: dict[str, Any] = {"org_id": principal.org_id,
                                     "text": {"$regex": re.escape(filters.q), "$options": "i"}}
            cursor = self._db[CALL_TURNS].find(query, {"call_id": 1}).limit(SEARCH_MATCH_LIMIT)
            found = {doc["call_id"] async for doc in cursor}
        if filters.success is not None:
            verdict = self._db[CALL_ANALYSES].find({"org_id": principal.org_id, "success": filters.success},
                                                   {"_id": 1}).limit(SEARCH_MATCH_LIMIT)
            judged = {doc["_id"] async for doc in verdict}
            found = judged if found is None else found & judged
        return found

    async def _analysis_fields(self, principal: Principal, filters: CallFilters) -> list[str]:
        """The extraction fields of the agent filtered on (else of every agent): one CSV column each."""
        query: dict[str, Any] = {"org_id": principal.org_id, "deleted_at": None}
        if filters.agent_id:
            query["_id"] = filters.agent_id
        names: set[str] = set()
        async for agent in self._db[AGENTS].find(query, {"current_version": 1}):
            version = await self._db[AGENT_VERSIONS].find_one({"_id": f"{agent['_id']}:v{agent['current_version']}"})
            schema = ((version or {}).get("config") or {}).get("analysis") or {}
            names.update(((schema.get("extraction_schema") or {}).get("properties") or {}).keys())
        return sorted(names)

    async def list_calls(self, principal: Principal, filters: CallFilters, cursor: str | None, limit: int) -> Page[CallSummary]:
        call_ids = await self._search_ids(principal, filters)
        if call_ids is not None and not call_ids:
            return Page(items=[], next_cursor=None)
        items, next_cursor = await self._log.page(principal.org_id, filters, cursor, limit, call_ids)
        return Page(items=items, next_cursor=next_cursor)

    async def detail(self, principal: Principal, call_id: str) -> CallDetail:
        doc = await self._call(principal, call_id)
        transcript = await load_transcript(self._db, call_id, principal.org_id)
        recording = await self._recording_of(doc)
        return CallDetail(
            **CallSummary.model_validate({**summary_of(doc), "has_recording": recording is not None}).model_dump(),
            turns=[TurnOut.model_validate(t) for t in transcript["turns"]],
            tools=[ToolCallOut.model_validate(t) for t in doc.get("tools", [])],
            degradations=[DegradationOut.model_validate(d) for d in doc.get("degradations", [])],
            usage=UsageUnits.model_validate(doc.get("usage") or {}),
            recording=RecordingInfo(duration_s=recording["duration_s"], sample_rate=recording["sample_rate"],
                                    channels=recording["channels"], size_bytes=recording["size_bytes"])
            if recording else None,
            end_detail=doc.get("end_detail") or None,
            variables=doc.get("variables") or {},
            analysis=await self._analysis(call_id, principal.org_id),
            cost=call_cost(await self._billing.price_book(principal.org_id), doc) if doc.get("ended_at") else None,
            flow_path=[FlowStepOut.model_validate(p) for p in doc.get("flow_path", [])],
            flow_variables=doc.get("flow_variables") or {},
        )

    async def _analysis(self, call_id: str, org_id: str) -> CallAnalysisOut | None:
        doc = await self._db[CALL_ANALYSES].find_one({"_id": call_id})
        return CallAnalysisOut.model_validate(doc) if doc is not None and doc.get("org_id") == org_id else None

    async def _recording_of(self, call: dict[str, Any]) -> dict[str, Any] | None:
        if call.get("recording"):
            return dict(call["recording"])
        if call.get("ended_at") is None:
            return None
        late = await self._db[CALL_RECORDINGS].find_one({"_id": call["_id"]})  # registered after the call ended
        return late if late is not None and late.get("org_id") == call["org_id"] else None

    async def _recording(self, principal: Principal, call_id: str) -> dict[str, Any]:
        recording = await self._recording_of(await self._call(principal, call_id))
        if recording is None:
            raise not_found("Recording")
        return recording

    async def recording_link(self, principal: Principal, call_id: str, expires_in_s: int | None) -> RecordingLink:
        recording = await self._recording(principal, call_id)
        ttl = timedelta(seconds=expires_in_s or self._url_ttl_s)
        url = self._store.presigned_get_url(recording["key"], expires=ttl)
        return RecordingLink(url=url, expires_at=datetime.now(UTC) + ttl, size_bytes=recording.get("size_bytes"))

    async def recording_stream(self, principal: Principal, call_id: str, range_header: str | None) -> RecordingStream:
        recording = await self._recording(principal, call_id)
        stored = await self._store.stat(recording["key"])
        if stored is None:
            raise not_found("Recording object")
        byte_range = parse_range(range_header, stored.size)
        start, length = (byte_range.start, byte_range.length) if byte_range else (0, stored.size)
        headers = {
            "Accept-Ranges": "bytes", "Content-Length": str(length),
            "Content-Type": stored.content_type or "audio/wav", "Cache-Control": "private, max-age=0",
            "Content-Disposition": f'inline; filename="{call_id}.wav"',
        }
        if byte_range:
            headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{stored.size}"

        async def body() -> AsyncIterator[bytes]:
            offset, remaining = start, length
            while remaining > 0:
                chunk = await self._store.get_bytes(recording["key"], offset=offset, length=min(STREAM_CHUNK, remaining))
                if not chunk:
                    break
                yield chunk
                offset += len(chunk)
                remaining -= len(chunk)

        return RecordingStream(206 if byte_range else 200, headers, body())

    async def export_csv(self, principal: Principal, filters: CallFilters) -> AsyncIterator[str]:
        call_ids = await self._search_ids(principal, filters)

        def line(values: list[Any]) -> str:
            buf = io.StringIO()
            csv.writer(buf).writerow(values)
            return buf.getvalue()

        fields = await self._analysis_fields(principal, filters)

        async def rows() -> AsyncIterator[str]:
            yield line([*EXPORT_COLUMNS, "cost_total", "analysis_success", "analysis_summary",
                        *(f"data_{f}" for f in fields)])
            if call_ids is not None and not call_ids:
                return
            async for item in self._log.iterate(principal.org_id, filters, call_ids, EXPORT_MAX_ROWS):
                analysis = await self._db[CALL_ANALYSES].find_one({"_id": item.id}) or {}
                data = analysis.get("data") or {}
                counted = await self._db[ORG_SPEND].find_one({"_id": f"call:{item.id}"}) or {}
                extra = [counted.get("cost"), analysis.get("success"), analysis.get("summary"),
                         *(data.get(f) for f in fields)]
                yield line([neutralise_cell(getattr(item, column)) for column in EXPORT_COLUMNS]
                           + [neutralise_cell(v) for v in extra])

        return rows()
