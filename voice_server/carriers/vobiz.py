"""Vobiz REST over httpx (reference A3): X-Auth-ID / X-Auth-Token headers, JSON bodies, exact path casing
and trailing slashes (`/Account/{auth_id}/Call/`; lowercase paths get 401)."""

from __future__ import annotations

from typing import Any, Literal

import httpx

from core.call_events import CarrierCredentials
from voice_server.carriers.base import CarrierError, OutboundCallRequest, OutboundCallResult

VOBIZ_API_BASE = "https://api.vobiz.ai/api/v1"
VOBIZ_API_PREFIX = "/api/v1"


def api_root(api_base_url: str | None) -> str:
    """`api_base_url` overrides the host (tests: the fake carrier); the /api/v1 prefix is added when missing."""
    base = (api_base_url or VOBIZ_API_BASE).rstrip("/")
    return base if base.endswith(VOBIZ_API_PREFIX) else base + VOBIZ_API_PREFIX


class VobizRestClient:
    carrier: Literal["twilio", "vobiz"] = "vobiz"

    def __init__(self, credentials: CarrierCredentials, http: httpx.AsyncClient) -> None:
        self.auth_id = credentials.account_id
        self._base = api_root(credentials.api_base_url)
        self._headers = {"X-Auth-ID": credentials.account_id, "X-Auth-Token": credentials.auth_token}
        self._http = http

    def _url(self, *parts: str) -> str:
        return f"{self._base}/Account/{self.auth_id}/" + "".join(f"{p}/" for p in parts)

    async def _request(self, operation: str, method: str, url: str, json: dict[str, Any] | None = None
                       ) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=json, headers=self._headers)
        except httpx.HTTPError as exc:
            raise CarrierError("vobiz", operation, 0, f"{type(exc).__name__}: {exc}") from exc

    async def hangup(self, carrier_call_id: str) -> bool:
        resp = await self._request("hangup", "DELETE", self._url("Call", carrier_call_id))
        if resp.status_code == 404:
            return False  # already ended
        if not resp.is_success:
            raise CarrierError("vobiz", "hangup", resp.status_code, resp.text)
        return True

    async def transfer(self, carrier_call_id: str, aleg_url: str) -> bool:
        """Interrupts the running XML (and the <Stream>) and runs the XML at aleg_url instead."""
        body = {"legs": "aleg", "aleg_url": aleg_url, "aleg_method": "POST"}
        resp = await self._request("transfer", "POST", self._url("Call", carrier_call_id), json=body)
        if resp.status_code == 404:
            return False
        if not resp.is_success:
            raise CarrierError("vobiz", "transfer", resp.status_code, resp.text)
        return True

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        if not instructions_url:
            raise CarrierError("vobiz", "transfer", 0, "a Vobiz transfer needs an XML URL with the <Dial>")
        if not await self.transfer(carrier_call_id, instructions_url):
            raise CarrierError("vobiz", "transfer", 404, "call already ended")

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        body: dict[str, Any] = {
            "from": request.from_number.lstrip("+"),
            "to": request.to_number.lstrip("+"),
            "answer_url": request.answer_url,
            "answer_method": "POST",
            "ring_timeout": request.ring_timeout_s,
        }
        if request.status_callback_url:
            body["hangup_url"] = request.status_callback_url
            body["hangup_method"] = "POST"
        if request.time_limit_s:
            body["time_limit"] = request.time_limit_s
        if request.machine_detection != "off":
            body["machine_detection"] = "true"
            if request.machine_detection_url:
                body["machine_detection_url"] = request.machine_detection_url
                body["machine_detection_method"] = "POST"
        resp = await self._request("create_call", "POST", self._url("Call"), json=body)
        if not resp.is_success:  # the docs say 200, others saw 201: any 2xx is success
            raise CarrierError("vobiz", "create_call", resp.status_code, resp.text)
        try:
            data = resp.json()
        except ValueError as exc:
            raise CarrierError("vobiz", "create_call", resp.status_code, "response is not JSON") from exc
        call_id = data.get("request_uuid") or data.get("call_uuid")
        if not call_id:
            raise CarrierError("vobiz", "create_call", resp.status_code, f"no request_uuid in {data}")
        return OutboundCallResult(carrier_call_id=str(call_id), status="queued")
