"""Which calls were placed through `POST /api/v1/calls` (single_calls.py), asked once per call and remembered.

Every `call.*` webhook event needs the answer: an API call may name a webhook of its own, and its `call.ended`
frees the organisation slot it holds. Asking the database on every event was three reads per call on the
outbox applier's path, the busiest loop of the backend (BENCHMARKS.md "Backend: two uvicorn workers").

The answer never changes once a call has events, so it is safe to remember both ways: the request is written
before its call exists (single_calls.py inserts it, then creates the call) and its webhook is never changed
afterwards; a call id that has no request when its events flow never gets one (API call ids are fresh ids or a
hash of the organisation and its Idempotency-Key). An inbound call is never an API request, so it is not asked
about at all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from backend.campaigns.collections import CALL_REQUESTS
from backend.db.collections import Db


@dataclass(frozen=True)
class ApiCallRequest:
    """What the webhook fan-out needs of a call's API request."""

    call_id: str
    webhook_id: str | None


class ApiCallRequests:
    """The API request behind a call, or None; answers (yes and no) kept for the `size` most recent calls."""

    def __init__(self, db: Db, size: int = 20000) -> None:
        self._db = db
        self._size = size
        self._known: OrderedDict[str, ApiCallRequest | None] = OrderedDict()

    async def of_call(self, call_id: str, *, inbound: bool = False) -> ApiCallRequest | None:
        if call_id in self._known:
            self._known.move_to_end(call_id)
            return self._known[call_id]
        request: ApiCallRequest | None = None
        if not inbound and call_id:
            doc = await self._db[CALL_REQUESTS].find_one({"_id": call_id}, {"webhook_id": 1})
            if doc is not None:
                request = ApiCallRequest(call_id=call_id, webhook_id=doc.get("webhook_id"))
        self._known[call_id] = request
        while len(self._known) > self._size:
            self._known.popitem(last=False)
        return request
