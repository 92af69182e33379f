"""Outgoing webhooks: subscriptions per organisation, HMAC-signed deliveries retried with exponential backoff, and a
delivery log.

A delivery's `_id` is "{webhook_id}:{event_id}", so fanning the same event out twice queues it once. Pending
deliveries sit in a small queue collection; the log keeps every delivery with its attempts. Only the elected
leader dispatches (services/leader.py). Delivery is at least once: receivers dedupe on X-Voiceagent-Delivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from pymongo.errors import DuplicateKeyError

from backend.config import BackendSettings
from backend.db.collections import WEBHOOK_DELIVERIES, WEBHOOK_QUEUE, WEBHOOKS, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, not_found
from backend.models.webhooks import (
    WebhookCreate,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookUpdate,
    subscription_matches,
)
from backend.security import opaque, signing
from backend.security.crypto import DecryptionError, SecretBox
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from core.egress import EgressBlocked

log = logging.getLogger(__name__)


def _secret_context(org_id: str, webhook_id: str) -> str:
    return f"org:{org_id}:webhook:{webhook_id}:secret"


def call_hook_id(call_id: str) -> str:
    """The webhook of one call placed with a `webhook_url` (POST /api/v1/calls)."""
    return f"call-{call_id}"


class WebhookService:
    def __init__(self, db: Db, settings: BackendSettings, box: SecretBox, audit: AuditLog) -> None:
        self._db = db
        self._settings = settings
        self._box = box
        self._audit = audit
        self.on_queued: Callable[[], None] = lambda: None  # wakes the dispatcher
        # Subscriptions per organisation, re-read at most once a second (every call event fans out).
        self._subscriptions: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    async def _active_hooks(self, org_id: str) -> list[dict[str, Any]]:
        cached = self._subscriptions.get(org_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # One call's own webhooks (`call_id` set) get only that call's events, through fan_out's `also`.
        hooks = [h async for h in self._db[WEBHOOKS].find({"org_id": org_id, "active": True, "call_id": None})]
        if len(self._subscriptions) > 10000:
            self._subscriptions.clear()
        self._subscriptions[org_id] = (time.monotonic() + 1.0, hooks)
        return hooks

    # ---------------------------------------------------------------- subscriptions

    def check_url(self, url: str, path: str = "body.url") -> None:
        # Names are resolved (once) and checked again at every delivery, by the dispatcher's egress transport.
        if self._settings.egress_policy().static_refusal(url) is not None:
            raise ApiError(422, "validation_error", f"{path}: private and loopback addresses are not allowed",
                           [ErrorDetail(path=path, message="private and loopback addresses are not allowed",
                                        type="value_error")])

    async def _owned(self, principal: Principal, webhook_id: str) -> dict[str, Any]:
        doc = await self._db[WEBHOOKS].find_one({"_id": webhook_id})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Webhook")
        return doc

    async def list_webhooks(self, principal: Principal) -> list[WebhookOut]:
        cursor = self._db[WEBHOOKS].find({"org_id": principal.org_id, "call_id": None}).sort("created_at", -1)
        return [_out(doc) async for doc in cursor]

    async def get(self, principal: Principal, webhook_id: str) -> WebhookOut:
        return _out(await self._owned(principal, webhook_id))

    async def create(self, principal: Principal, body: WebhookCreate) -> WebhookOut:
        url = str(body.url)
        self.check_url(url)
        webhook_id, now = new_id(), utcnow()
        secret = f"{opaque.WEBHOOK_SECRET_PREFIX}_{opaque.new_secret()}"
        doc = {
            "_id": webhook_id, "org_id": principal.org_id, "url": url, "events": body.events,
            "description": body.description, "active": body.active,
            "secret_enc": self._box.encrypt(secret, _secret_context(principal.org_id, webhook_id)),
            "created_at": now, "updated_at": now, "created_by": principal.actor,
        }
        await self._db[WEBHOOKS].insert_one(doc)
        self._subscriptions.pop(principal.org_id, None)
        await self._audit.record(principal.org_id, principal, "webhook.created", "webhook", webhook_id,
                                 {"url": url, "events": body.events})
        out = _out(doc)
        out.secret = secret
        return out

    async def update(self, principal: Principal, webhook_id: str, body: WebhookUpdate) -> WebhookOut:
        doc = await self._owned(principal, webhook_id)
        changes: dict[str, Any] = {}
        if body.url is not None:
            self.check_url(str(body.url))
            changes["url"] = str(body.url)
        if body.events is not None:
            changes["events"] = body.events
        if body.description is not None:
            changes["description"] = body.description
        if body.active is not None:
            changes["active"] = body.active
        if changes:
            changes["updated_at"] = utcnow()
            await self._db[WEBHOOKS].update_one({"_id": webhook_id}, {"$set": changes})
            self._subscriptions.pop(principal.org_id, None)
            await self._audit.record(principal.org_id, principal, "webhook.updated", "webhook", webhook_id,
                                     {"fields": sorted(k for k in changes if k != "updated_at")})
            doc.update(changes)
        return _out(doc)

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        await self._owned(principal, webhook_id)
        await self._db[WEBHOOKS].delete_one({"_id": webhook_id})
        self._subscriptions.pop(principal.org_id, None)
        await self._audit.record(principal.org_id, principal, "webhook.deleted", "webhook", webhook_id)

    async def deliveries(self, principal: Principal, webhook_id: str, limit: int) -> list[WebhookDeliveryOut]:
        await self._owned(principal, webhook_id)
        cursor = self._db[WEBHOOK_DELIVERIES].find({"webhook_id": webhook_id}).sort("created_at", -1).limit(limit)
        return [_delivery_out(d) async for d in cursor if d["org_id"] == principal.org_id]

    async def send_test(self, principal: Principal, webhook_id: str) -> WebhookDeliveryOut:
        doc = await self._owned(principal, webhook_id)
        event_id = new_id()
        delivery = await self._queue(doc, "webhook.test", event_id, {"message": "Test delivery"}, utcnow())
        return _delivery_out(delivery)

    async def is_active(self, org_id: str, webhook_id: str) -> bool:
        return any(hook["_id"] == webhook_id for hook in await self._active_hooks(org_id))

    async def create_for_call(self, principal: Principal, call_id: str, url: str) -> str:
        """A webhook for one call placed with a `webhook_url`: it gets that call's events only (never listed, never
        matched by event type), signed and delivered like any other. Returns its signing secret; a retried request
        (same call id) gets the same one."""
        self.check_url(url, "body.webhook_url")
        hook_id, now = call_hook_id(call_id), utcnow()
        existing = await self._db[WEBHOOKS].find_one({"_id": hook_id})
        if existing is not None and existing["org_id"] == principal.org_id:
            return self._box.decrypt(existing["secret_enc"], _secret_context(principal.org_id, hook_id))
        secret = f"{opaque.WEBHOOK_SECRET_PREFIX}_{opaque.new_secret()}"
        await self._db[WEBHOOKS].insert_one({
            "_id": hook_id, "org_id": principal.org_id, "call_id": call_id, "url": url, "events": [],
            "description": f"call {call_id}", "active": True,
            "secret_enc": self._box.encrypt(secret, _secret_context(principal.org_id, hook_id)),
            "created_at": now, "updated_at": now, "created_by": principal.actor})
        await self._audit.record(principal.org_id, principal, "webhook.created", "webhook", hook_id,
                                 {"url": url, "call_id": call_id})
        return secret

    # ---------------------------------------------------------------- fan-out (called by the outbox processor)

    async def fan_out(self, org_id: str, event_type: str, event_id: str, data: dict[str, Any], at: datetime,
                      also: str | None = None) -> None:
        """`also`: a webhook id that gets this event whatever it subscribes to (a call placed through the API with
        a per-call webhook)."""
        hooks = await self._active_hooks(org_id)
        for hook in hooks:
            if subscription_matches(hook["events"], event_type) or hook["_id"] == also:
                await self._queue(hook, event_type, event_id, data, at)
        if also and all(hook["_id"] != also for hook in hooks):  # the call's own webhook_url
            own = await self._db[WEBHOOKS].find_one({"_id": also, "org_id": org_id, "active": True})
            if own is not None:
                await self._queue(own, event_type, event_id, data, at)

    async def _queue(
        self, hook: dict[str, Any], event_type: str, event_id: str, data: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        delivery_id = f"{hook['_id']}:{event_id}"
        now = utcnow()
        envelope = {"id": event_id, "type": event_type, "created_at": at.isoformat(), "organization_id": hook["org_id"],
                    "data": data}
        record = {"_id": delivery_id, "org_id": hook["org_id"], "webhook_id": hook["_id"], "event_type": event_type,
                  "event_id": event_id, "status": "pending", "attempts": [], "created_at": now,
                  "next_attempt_at": now, "delivered_at": None}
        try:
            await self._db[WEBHOOK_DELIVERIES].insert_one(record)
        except DuplicateKeyError:
            existing = await self._db[WEBHOOK_DELIVERIES].find_one({"_id": delivery_id}) or record
            if existing.get("status") != "pending":
                return existing
            record = existing  # queued before a crash, maybe without its queue entry: make sure it has one
        await self._db[WEBHOOK_QUEUE].update_one(
            {"_id": delivery_id},
            {"$setOnInsert": {"org_id": hook["org_id"], "webhook_id": hook["_id"], "payload": envelope,
                              "attempts": 0, "next_attempt_at": now}},
            upsert=True,
        )
        self.on_queued()
        return record


class WebhookDispatcher:
    """Leader only. Sends due deliveries concurrently; each attempt is recorded in the delivery log."""

    def __init__(self, db: Db, settings: BackendSettings, box: SecretBox, http: httpx.AsyncClient) -> None:
        self._db = db
        self._settings = settings
        self._box = box
        self._http = http
        self._lock = asyncio.Lock()

    def backoff_s(self, attempts: int) -> float:
        s = self._settings
        return min(s.webhook_backoff_base_s * 2 ** (attempts - 1), s.webhook_backoff_max_s) * random.uniform(0.8, 1.2)

    async def run_once(self, limit: int = 50) -> int:
        async with self._lock:
            now = utcnow()
            due = [d async for d in self._db[WEBHOOK_QUEUE].find({"next_attempt_at": {"$lte": now}})
                   .sort("next_attempt_at", 1).limit(limit)]
            if due:
                semaphore = asyncio.Semaphore(16)

                async def one(item: dict[str, Any]) -> None:
                    async with semaphore:
                        await self._attempt(item)

                await asyncio.gather(*(one(item) for item in due))
            return len(due)

    async def _attempt(self, item: dict[str, Any]) -> None:
        hook = await self._db[WEBHOOKS].find_one({"_id": item["webhook_id"]})
        attempt_no = int(item["attempts"]) + 1
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        permanent = False
        if hook is None or not hook.get("active"):
            error, permanent = "webhook deleted or disabled", True
        if error is None and hook is not None:
            try:
                secret = self._box.decrypt(hook["secret_enc"], _secret_context(hook["org_id"], hook["_id"]))
            except DecryptionError:
                secret, error, permanent = "", "signing secret cannot be decrypted", True
            if error is None:
                body = json.dumps(item["payload"], separators=(",", ":"), default=str).encode()
                headers = {
                    "Content-Type": "application/json", "User-Agent": "voiceagent-webhooks/1",
                    signing.SIGNATURE_HEADER: signing.sign(secret, body, int(time.time())),
                    signing.EVENT_HEADER: item["payload"]["type"], signing.DELIVERY_HEADER: item["_id"],
                }
                try:
                    resp = await self._http.post(hook["url"], content=body, headers=headers,
                                                 timeout=self._settings.webhook_timeout_s)
                    status_code = resp.status_code
                    if not 200 <= resp.status_code < 300:
                        error = f"HTTP {resp.status_code}"
                except EgressBlocked as exc:  # the dispatcher's client only reaches public (or allowed) addresses
                    error, permanent = str(exc)[:300], True
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:300]
        now = utcnow()
        entry = {"n": attempt_no, "at": now, "status_code": status_code, "error": error,
                 "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        if error is None:
            await self._finish(item, entry, "delivered")
        elif permanent or attempt_no >= self._settings.webhook_max_attempts:
            await self._finish(item, entry, "failed")
        else:
            next_at = now + timedelta(seconds=self.backoff_s(attempt_no))
            await self._db[WEBHOOK_QUEUE].update_one({"_id": item["_id"]},
                                                     {"$set": {"attempts": attempt_no, "next_attempt_at": next_at}})
            await self._db[WEBHOOK_DELIVERIES].update_one(
                {"_id": item["_id"]}, {"$push": {"attempts": entry}, "$set": {"next_attempt_at": next_at}})

    async def _finish(self, item: dict[str, Any], entry: dict[str, Any], status: str) -> None:
        changes: dict[str, Any] = {"status": status, "next_attempt_at": None}
        if status == "delivered":
            changes["delivered_at"] = entry["at"]
        await self._db[WEBHOOK_DELIVERIES].update_one({"_id": item["_id"]},
                                                      {"$push": {"attempts": entry}, "$set": changes})
        await self._db[WEBHOOK_QUEUE].delete_one({"_id": item["_id"]})


def _out(doc: dict[str, Any]) -> WebhookOut:
    return WebhookOut(id=doc["_id"], url=doc["url"], events=doc["events"], description=doc.get("description", ""),
                      active=doc["active"], created_at=doc["created_at"], updated_at=doc["updated_at"])


def _delivery_out(doc: dict[str, Any]) -> WebhookDeliveryOut:
    attempts = doc.get("attempts", [])
    last = attempts[-1] if attempts else {}
    return WebhookDeliveryOut(
        id=doc["_id"], event=doc["event_type"], event_id=doc["event_id"], status=doc["status"],
        attempts=len(attempts), response_status=last.get("status_code"), error=last.get("error"),
        created_at=doc["created_at"], last_attempt_at=last.get("at"), next_attempt_at=doc.get("next_attempt_at"),
        delivered_at=doc.get("delivered_at"),
    )
