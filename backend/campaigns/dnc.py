"""The organisation's do-not-call list. The dialer checks it right before every dial (by `_id`, one read), so a
number added while a campaign runs is never dialled afterwards."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.campaigns.collections import DNC, dnc_id
from backend.campaigns.contacts_import import parse_phone_list
from backend.campaigns.models import DncEntryIn, DncEntryOut, ImportReport
from backend.campaigns.phones import PhoneError, normalize_phone
from backend.campaigns.service import decode_cursor, encode_cursor, row_errors_to_details
from backend.campaigns.settings import CampaignSettingsMixin
from backend.db.collections import Db
from backend.db.ids import new_id, utcnow
from backend.db.writes import insert_many_ignoring_duplicates
from backend.errors import ApiError, ErrorDetail, not_found
from backend.models.common import Page
from backend.security.permissions import Principal
from backend.services.audit import AuditLog


def _phone_or_422(raw: str, region: str, path: str) -> str:
    try:
        return normalize_phone(raw, region)
    except PhoneError as exc:
        raise ApiError(422, "validation_error", f"{path}: {exc}",
                       [ErrorDetail(path=path, message=str(exc), type="phone")]) from None


def _out(doc: dict[str, Any]) -> DncEntryOut:
    return DncEntryOut(phone=doc["phone"], reason=doc.get("reason"), source=doc.get("source", "api"),
                       created_at=doc["created_at"])


class DncService:
    def __init__(self, db: Db, settings: CampaignSettingsMixin, audit: AuditLog) -> None:
        self._db = db
        self._settings = settings
        self._audit = audit

    async def add(self, principal: Principal, body: DncEntryIn) -> tuple[DncEntryOut, bool]:
        """The entry, and whether it was new (adding a listed number again changes nothing)."""
        phone = _phone_or_422(body.phone, body.default_region, "body.phone")
        doc = {"_id": dnc_id(principal.org_id, phone), "org_id": principal.org_id, "phone": phone,
               "reason": body.reason, "source": "api", "created_at": utcnow(), "created_by": principal.actor}
        try:
            await self._db[DNC].insert_one(doc)
        except DuplicateKeyError:
            existing = await self._db[DNC].find_one({"_id": doc["_id"]})
            return _out(existing or doc), False
        await self._audit.record(principal.org_id, principal, "dnc.added", "dnc", phone)
        return _out(doc), True

    async def remove(self, principal: Principal, phone: str, region: str) -> None:
        e164 = _phone_or_422(phone, region, "path.phone")
        res = await self._db[DNC].delete_one({"_id": dnc_id(principal.org_id, e164)})
        if res.deleted_count == 0:
            raise not_found("Do-not-call entry")
        await self._audit.record(principal.org_id, principal, "dnc.removed", "dnc", e164)

    async def get(self, principal: Principal, phone: str, region: str) -> DncEntryOut:
        e164 = _phone_or_422(phone, region, "path.phone")
        doc = await self._db[DNC].find_one({"_id": dnc_id(principal.org_id, e164)})
        if doc is None:
            raise not_found("Do-not-call entry")
        return _out(doc)

    async def list(self, principal: Principal, cursor: str | None, limit: int) -> Page[DncEntryOut]:
        offset = decode_cursor(cursor)
        query = self._db[DNC].find({"org_id": principal.org_id}).sort([("created_at", -1), ("_id", 1)])
        docs = await query.skip(offset).limit(limit + 1).to_list()
        more = len(docs) > limit
        return Page(items=[_out(d) for d in docs[:limit]], next_cursor=encode_cursor(offset + limit) if more else None)

    async def import_csv(self, principal: Principal, data: bytes, phone_column: str | None,
                         default_region: str) -> ImportReport:
        if len(data) > self._settings.campaign_csv_max_bytes:
            raise ApiError(413, "payload_too_large",
                           f"file is larger than {self._settings.campaign_csv_max_bytes} bytes")
        parsed = await asyncio.to_thread(parse_phone_list, data, default_region=default_region,
                                         phone_column=phone_column, max_rows=self._settings.campaign_csv_max_rows,
                                         keep_variables=False)
        if parsed.error_count:
            shown = "; ".join(f"row {e.row}: {e.message}" for e in parsed.errors[:3])
            raise ApiError(422, "invalid_csv", f"{parsed.error_count} invalid row(s), nothing was imported: {shown}",
                           row_errors_to_details(parsed.errors))
        batch, now = new_id(), utcnow()
        docs = [{"_id": dnc_id(principal.org_id, c.phone), "org_id": principal.org_id, "phone": c.phone,
                 "reason": (c.variables.get("reason") or None), "source": "csv", "batch": batch, "created_at": now,
                 "created_by": principal.actor} for c in parsed.contacts]
        try:
            present = len(await insert_many_ignoring_duplicates(self._db, DNC, docs))
        except Exception:
            await self._db[DNC].delete_many({"batch": batch})  # all or nothing
            raise
        await self._audit.record(principal.org_id, principal, "dnc.imported", "dnc", None,
                                 {"imported": len(docs) - present})
        return ImportReport(import_id=batch, imported=len(docs) - present, already_present=present, rows=parsed.rows,
                            duplicates_in_file=parsed.duplicates_in_file, phone_column=parsed.phone_column,
                            variables=parsed.variables, encoding=parsed.encoding, delimiter=parsed.delimiter)
