"""The call list read model: per organisation, numbered pages of call summaries, newest page last.

Why pages: the list is the most frequent read and must not depend on the size of the calls collection. FerretDB on
SQLite (the local database) answers only exact `_id` lookups from an index and scans for everything else, so a
"newest 50 calls of this org" query over the calls collection slows down with every call ever made. Pages are read by
`_id` (head pointer, then one or two pages), whatever the history. A page keeps its summaries as one JSON string:
FerretDB's cost grows with the number of fields in a document (a 100-summary page read field by field took ~45 ms,
as one string ~9 ms).

The head document carries the revision of recently written pages, so a replica serves those pages from memory as
long as their revision is unchanged; the leader fills that cache as it writes.

Only the elected leader writes pages (OutboxProcessor), so the read-modify-write of a page never races.
Filters are applied while walking pages backwards, within a budget of pages per request; a request that runs out of
budget returns what it found and a cursor to continue from. On MongoDB the same code runs unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.db.collections import CALL_LOG_HEADS, CALL_LOG_INDEX, CALL_LOG_PAGES, CALL_LOG_PAGES_ARCHIVE, Db
from backend.db.tiered import Tiered
from backend.db.writes import insert_many_ignoring_duplicates
from backend.errors import bad_request
from backend.models.calls import CallFilters, CallSummary
from backend.services.leader import Leadership

PAGE_SIZE = 50
HEAD_REVISIONS_KEPT = 8
SUMMARY_FIELDS = tuple(CallSummary.model_fields)


def page_id(org_id: str, page: int) -> str:
    return f"{org_id}:{page:010d}"


def summary_of(call: dict[str, Any]) -> dict[str, Any]:
    out = {field: call.get(field) for field in SUMMARY_FIELDS if field != "id"}
    out["id"] = call["_id"]
    out["has_recording"] = bool(call.get("recording"))
    out["answered"] = bool(call.get("answered"))
    return out


def _encode(items: list[dict[str, Any] | None]) -> str:
    def default(value: Any) -> str:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(items, default=default, separators=(",", ":"))


def _decode(text: str) -> list[CallSummary | None]:
    return [None if item is None else CallSummary.model_validate(item) for item in json.loads(text)]


@dataclass(frozen=True)
class Position:
    page: int
    slot: int

    def encode(self) -> str:
        raw = json.dumps({"p": self.page, "s": self.slot}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            pos = cls(int(data["p"]), int(data["s"]))
        except (ValueError, KeyError, TypeError):
            raise bad_request("Invalid cursor", path="query.cursor", code="invalid_cursor") from None
        if pos.page < 0 or pos.slot < 0:
            raise bad_request("Invalid cursor", path="query.cursor", code="invalid_cursor")
        return pos


def matches(item: CallSummary, filters: CallFilters, call_ids: set[str] | None) -> bool:
    if call_ids is not None and item.id not in call_ids:
        return False
    if filters.agent_id and item.agent_id != filters.agent_id:
        return False
    if filters.direction and item.direction != filters.direction:
        return False
    if filters.status and item.status != filters.status:
        return False
    if filters.campaign_id and item.campaign_id != filters.campaign_id:
        return False
    if filters.number and filters.number not in f"{item.from_number} {item.to_number}":
        return False
    if filters.since and item.created_at < filters.since:
        return False
    return not (filters.until and item.created_at >= filters.until)


@dataclass
class _Page:
    number: int
    rev: int
    items: list[CallSummary | None]
    max_created_at: datetime | None


class _PageCache:
    """Decoded pages by (page id, revision); a changed page has a new revision, so entries never go stale."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._pages: OrderedDict[tuple[str, int], _Page] = OrderedDict()

    def get(self, key: tuple[str, int]) -> _Page | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: tuple[str, int], page: _Page) -> None:
        self._pages[key] = page
        self._pages.move_to_end(key)
        while len(self._pages) > self._size:
            self._pages.popitem(last=False)


class CallLog:
    def __init__(self, db: Db, leadership: Leadership | None = None, page_budget: int = 50) -> None:
        self._db = db
        self._leadership = leadership
        self.page_budget = page_budget
        self._cache = _PageCache()
        self.pages = Tiered(db, CALL_LOG_PAGES, CALL_LOG_PAGES_ARCHIVE)
        # Leader-only knowledge (the leader is the only writer): heads it wrote and where each call sits.
        self._term: int | None = None
        self._heads: dict[str, dict[str, Any]] = {}
        self._locations: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._new_calls: set[str] = set()

    def begin_write_term(self, term: int) -> None:
        """Called by the processor before writing; a new leadership term forgets what an older one knew."""
        if term != self._term:
            self._term = term
            self._heads.clear()
            self._locations.clear()

    def reset_writer_state(self) -> None:
        self._term = None
        self._heads.clear()
        self._locations.clear()
        self._new_calls.clear()

    async def _head(self, org_id: str) -> dict[str, Any] | None:
        if self._leadership is not None and self._term is not None and org_id in self._heads:
            if await self._leadership.current_term() == self._term:
                return self._heads[org_id]
        return await self._db[CALL_LOG_HEADS].find_one({"_id": org_id})

    # ---------------------------------------------------------------- reads

    async def _load_page(self, org_id: str, number: int, known_rev: int | None) -> _Page | None:
        key = page_id(org_id, number)
        if known_rev is not None and (hit := self._cache.get((key, known_rev))) is not None:
            return hit
        doc = await self.pages.find_one(key)
        if doc is None:
            return None
        page = _Page(number, int(doc.get("rev", 0)), _decode(doc["items_json"]), doc.get("max_created_at"))
        self._cache.put((key, page.rev), page)
        return page

    async def walk(
        self, org_id: str, start: Position | None, filters: CallFilters, call_ids: set[str] | None,
        page_budget: int | None,
    ) -> AsyncIterator[tuple[Position, CallSummary | None]]:
        """Yields (position, summary) newest first; a None summary marks an exhausted budget (resume there)."""
        head = await self._head(org_id)
        if head is None:
            return
        revs: dict[str, int] = head.get("revs", {})
        page_no = int(head["page"]) if start is None else min(start.page, int(head["page"]))
        budget = page_budget if page_budget is not None else 10**9
        while page_no >= 0 and budget > 0:
            batch = [n for n in (page_no, page_no - 1) if n >= 0][:budget]
            pages = await asyncio.gather(*(self._load_page(org_id, n, revs.get(str(n))) for n in batch))
            budget -= len(batch)
            for number, page in zip(batch, pages, strict=True):
                if page is None:
                    continue
                if filters.since and page.max_created_at and page.max_created_at < filters.since:
                    return  # pages are in creation order: everything older is out of range too
                top = len(page.items) - 1
                if start is not None and number == start.page:
                    top = min(top, start.slot - 1)
                for slot in range(top, -1, -1):
                    item = page.items[slot]
                    if item is not None and matches(item, filters, call_ids):
                        yield Position(number, slot), item
            page_no = batch[-1] - 1
        if page_no >= 0:
            yield Position(page_no + 1, 0), None

    async def page(
        self, org_id: str, filters: CallFilters, cursor: str | None, limit: int, call_ids: set[str] | None = None
    ) -> tuple[list[CallSummary], str | None]:
        start = Position.decode(cursor) if cursor else None
        found: list[tuple[Position, CallSummary]] = []
        next_cursor: str | None = None
        async for pos, item in self.walk(org_id, start, filters, call_ids, self.page_budget):
            if item is None:
                next_cursor = pos.encode()
                break
            found.append((pos, item))
            if len(found) > limit:
                next_cursor = found[limit - 1][0].encode()
                found = found[:limit]
                break
        return [item for _, item in found], next_cursor

    async def iterate(
        self, org_id: str, filters: CallFilters, call_ids: set[str] | None, max_items: int
    ) -> AsyncIterator[CallSummary]:
        count = 0
        async for _pos, item in self.walk(org_id, None, filters, call_ids, None):
            if item is None:
                break
            yield item
            count += 1
            if count >= max_items:
                break

    # ---------------------------------------------------------------- writes (leader only)

    async def project(self, calls: list[dict[str, Any]]) -> None:
        by_org: dict[str, list[dict[str, Any]]] = {}
        for call in calls:
            by_org.setdefault(call["org_id"], []).append(call)
        for org_id, org_calls in by_org.items():
            await self._project_org(org_id, sorted(org_calls, key=lambda c: c["created_at"]))

    async def _project_org(self, org_id: str, calls: list[dict[str, Any]]) -> None:
        head = self._heads.get(org_id) or await self._db[CALL_LOG_HEADS].find_one({"_id": org_id})
        revs: dict[str, int] = dict(head.get("revs", {})) if head else {}
        head_no = int(head["page"]) if head else 0
        pages: dict[int, dict[str, Any]] = {}
        dirty: set[int] = set()
        new_locations: list[dict[str, Any]] = []

        async def load(number: int) -> dict[str, Any]:
            if number not in pages:
                cached = await self._load_page(org_id, number, revs.get(str(number)))
                pages[number] = {
                    "number": number, "rev": cached.rev if cached else 0,
                    "items": [None if i is None else i.model_dump() for i in cached.items] if cached else [],
                }
            return pages[number]

        async def location(call_id: str) -> dict[str, Any] | None:
            if (known := self._locations.get(call_id)) is not None:
                return known
            if call_id in self._new_calls:
                return None
            return await self._db[CALL_LOG_INDEX].find_one({"_id": call_id})

        locations = await asyncio.gather(*(location(c["_id"]) for c in calls))
        for call, loc in zip(calls, locations, strict=True):
            summary = summary_of(call)
            if loc is None:
                loc = await self._find_unindexed(load, head_no, call["_id"])
            if loc is not None:
                page = await load(int(loc["page"]))
                items = page["items"]
                while len(items) <= int(loc["slot"]):
                    items.append(None)
                items[int(loc["slot"])] = summary
                dirty.add(page["number"])
                continue
            page = await load(head_no)
            while len(page["items"]) >= PAGE_SIZE:
                head_no += 1
                page = await load(head_no)
            page["items"].append(summary)
            dirty.add(head_no)
            new_locations.append({"_id": call["_id"], "org_id": org_id, "page": head_no,
                                  "slot": len(page["items"]) - 1})
        for number in sorted(dirty):
            await self._write_page(org_id, pages[number])
            revs[str(number)] = pages[number]["rev"]
        # Pages first, then locations: after a crash in between, _find_unindexed finds the call in its page.
        await insert_many_ignoring_duplicates(self._db, CALL_LOG_INDEX, new_locations)
        for call, loc in zip(calls, locations, strict=True):
            if loc is not None:
                self._remember_location(call["_id"], loc)
        for new in new_locations:
            self._remember_location(new["_id"], new)
        self._new_calls.clear()
        kept = sorted((int(n) for n in revs), reverse=True)[:HEAD_REVISIONS_KEPT]
        new_head = {"_id": org_id, "page": head_no, "revs": {str(n): revs[str(n)] for n in kept}}
        await self._db[CALL_LOG_HEADS].replace_one({"_id": org_id}, new_head, upsert=True)
        if self._term is not None:
            self._heads[org_id] = new_head

    async def remove(self, org_id: str, call_ids: list[str]) -> None:
        """Leader only: blanks the rows of erased calls (a None slot, which every read skips) and forgets where they
        were. An archived copy of a changed page is dropped at once, so the erased row lives nowhere."""
        head = await self._head(org_id)
        if head is None:
            return
        revs: dict[str, int] = dict(head.get("revs", {}))
        changed: dict[int, dict[str, Any]] = {}
        for call_id in call_ids:
            loc = self._locations.pop(call_id, None) or await self._db[CALL_LOG_INDEX].find_one({"_id": call_id})
            if loc is None:
                continue
            number = int(loc["page"])
            if number not in changed:
                cached = await self._load_page(org_id, number, revs.get(str(number)))
                if cached is None:
                    continue
                changed[number] = {"number": number, "rev": cached.rev,
                                   "items": [None if i is None else i.model_dump() for i in cached.items]}
            items = changed[number]["items"]
            if int(loc["slot"]) < len(items) and items[int(loc["slot"])] is not None \
                    and items[int(loc["slot"])]["id"] == call_id:
                items[int(loc["slot"])] = None
            await self._db[CALL_LOG_INDEX].delete_one({"_id": call_id})
        for number, page in changed.items():
            await self._write_page(org_id, page)
            await self._db[CALL_LOG_PAGES_ARCHIVE].delete_one({"_id": page_id(org_id, number)})
            if str(number) in revs:
                revs[str(number)] = page["rev"]
        if changed:
            new_head = {**head, "revs": revs}
            await self._db[CALL_LOG_HEADS].replace_one({"_id": org_id}, new_head, upsert=True)
            if self._term is not None:
                self._heads[org_id] = new_head

    async def archive_old_pages(self) -> int:
        """Leader only, serialised with page writes: pages two or more behind an organisation's head page rarely
        change again; they move to the archive so page writes stay cheap."""
        moved = 0
        async for head in self._db[CALL_LOG_HEADS].find({}):
            old = [doc async for doc in self._db[CALL_LOG_PAGES].find(
                {"org_id": head["_id"], "page": {"$lt": int(head["page"]) - 1}})]
            moved += await self.pages.move_to_archive(old)
        return moved

    def note_new_call(self, call_id: str) -> None:
        """The processor just created this call: it has no place in the pages yet (saves a lookup)."""
        self._new_calls.add(call_id)

    def _remember_location(self, call_id: str, loc: dict[str, Any]) -> None:
        self._locations[call_id] = {"page": int(loc["page"]), "slot": int(loc["slot"])}
        self._locations.move_to_end(call_id)
        while len(self._locations) > 100_000:
            self._locations.popitem(last=False)

    async def _write_page(self, org_id: str, page: dict[str, Any]) -> None:
        page["rev"] += 1
        stamps = [i["created_at"] for i in page["items"] if i is not None and i.get("created_at")]
        doc = {"_id": page_id(org_id, page["number"]), "org_id": org_id, "page": page["number"], "rev": page["rev"],
               "count": len(page["items"]), "max_created_at": max(stamps) if stamps else None,
               "items_json": _encode(page["items"])}
        await self._db[CALL_LOG_PAGES].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        decoded = _Page(page["number"], page["rev"], _decode(doc["items_json"]), doc["max_created_at"])
        self._cache.put((doc["_id"], page["rev"]), decoded)

    async def _find_unindexed(
        self, load: Callable[[int], Awaitable[dict[str, Any]]], head_no: int, call_id: str
    ) -> dict[str, Any] | None:
        for number in (head_no + 1, head_no, head_no - 1):
            if number < 0:
                continue
            page = await load(number)
            for slot, item in enumerate(page["items"]):
                if item is not None and item["id"] == call_id:
                    return {"page": number, "slot": slot}
        return None
