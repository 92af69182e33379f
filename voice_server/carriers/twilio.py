"""Twilio REST through the `twilio` library's async client (reference B6).

`api_base_url` replaces https://api.twilio.com so tests can use the fake carrier.
"""

from __future__ import annotations

from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from core.call_events import CarrierCredentials
from voice_server.carriers.base import CarrierError, OutboundCallRequest, OutboundCallResult


def dial_twiml(target_e164: str, caller_id: str | None) -> str:
    caller = f" callerId={quoteattr(caller_id)}" if caller_id else ""
    return f"<Response><Dial{caller}>{escape(target_e164)}</Dial></Response>"


class TwilioRestClient:
    carrier: Literal["twilio", "vobiz"] = "twilio"

    def __init__(self, credentials: CarrierCredentials, timeout_s: float = 10.0) -> None:
        self.account_sid = credentials.account_id
        self._http = AsyncTwilioHttpClient(timeout=timeout_s)
        self._client = Client(credentials.account_id, credentials.auth_token, http_client=self._http)
        if credentials.api_base_url:
            self._client.api.base_url = credentials.api_base_url.rstrip("/")

    async def close(self) -> None:
        await self._http.close()

    async def _update(self, operation: str, call_sid: str, **fields: Any) -> bool:
        try:
            await self._client.calls(call_sid).update_async(**fields)
        except TwilioRestException as exc:
            if exc.status == 404 and exc.code in (20404, None):
                return False  # the call is already over
            raise CarrierError("twilio", operation, exc.status, str(exc.msg)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise CarrierError("twilio", operation, 0, str(exc)) from exc
        return True

    async def hangup(self, carrier_call_id: str) -> bool:
        # Status=completed ends even an in-progress call; canceled would only affect queued/ringing ones.
        return await self._update("hangup", carrier_call_id, status="completed")

    async def redirect(self, carrier_call_id: str, twiml: str) -> bool:
        """Replaces the running TwiML, which also ends the <Connect><Stream>."""
        return await self._update("redirect", carrier_call_id, twiml=twiml)

    async def transfer_blind(self, carrier_call_id: str, target_e164: str, caller_id: str | None,
                             instructions_url: str | None) -> None:
        if not await self.redirect(carrier_call_id, dial_twiml(target_e164, caller_id)):
            raise CarrierError("twilio", "transfer", 404, "call already ended")

    async def create_call(self, request: OutboundCallRequest) -> OutboundCallResult:
        fields: dict[str, Any] = {
            "to": request.to_number,
            "from_": request.from_number,
            "url": request.answer_url,
            "timeout": request.ring_timeout_s,
        }
        if request.status_callback_url:
            fields["status_callback"] = request.status_callback_url
            fields["status_callback_method"] = "POST"
            fields["status_callback_event"] = list(request.status_events)
        if request.time_limit_s:
            fields["time_limit"] = request.time_limit_s
        if request.machine_detection != "off":
            fields["machine_detection"] = "Enable" if request.machine_detection == "enable" else "DetectMessageEnd"
            if request.machine_detection_url:
                fields["async_amd"] = "true"
                fields["async_amd_status_callback"] = request.machine_detection_url
                fields["async_amd_status_callback_method"] = "POST"
        try:
            call = await self._client.calls.create_async(**fields)
        except TwilioRestException as exc:
            raise CarrierError("twilio", "create_call", exc.status, str(exc.msg)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise CarrierError("twilio", "create_call", 0, str(exc)) from exc
        return OutboundCallResult(carrier_call_id=str(call.sid), status=str(call.status or "queued"))

    async def create_call_twiml(self, to_number: str, from_number: str, twiml: str,
                                status_callback_url: str | None = None) -> OutboundCallResult:
        """A call that runs inline TwiML (used to brief the human in a warm transfer)."""
        fields: dict[str, Any] = {"to": to_number, "from_": from_number, "twiml": twiml}
        if status_callback_url:
            fields["status_callback"] = status_callback_url
            fields["status_callback_event"] = ["answered", "completed"]
        try:
            call = await self._client.calls.create_async(**fields)
        except TwilioRestException as exc:
            raise CarrierError("twilio", "create_call", exc.status, str(exc.msg)) from exc
        except (TwilioException, OSError, TimeoutError) as exc:
            raise CarrierError("twilio", "create_call", 0, str(exc)) from exc
        return OutboundCallResult(carrier_call_id=str(call.sid), status=str(call.status or "queued"))
