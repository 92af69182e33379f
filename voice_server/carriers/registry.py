"""One REST client per set of carrier credentials for the life of the process."""

from __future__ import annotations

import httpx

from core.call_events import CarrierCredentials
from voice_server.carriers.twilio import TwilioRestClient
from voice_server.carriers.vobiz import VobizRestClient


class CarrierClients:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=200))
        self._twilio: dict[tuple[str, str, str], TwilioRestClient] = {}
        self._vobiz: dict[tuple[str, str, str], VobizRestClient] = {}

    def for_credentials(self, credentials: CarrierCredentials) -> TwilioRestClient | VobizRestClient:
        key = (credentials.account_id, credentials.auth_token, credentials.api_base_url or "")
        if credentials.carrier == "twilio":
            if key not in self._twilio:
                self._twilio[key] = TwilioRestClient(credentials, timeout_s=self._timeout_s)
            return self._twilio[key]
        if key not in self._vobiz:
            self._vobiz[key] = VobizRestClient(credentials, self._http)
        return self._vobiz[key]

    async def close(self) -> None:
        for client in self._twilio.values():
            await client.close()
        self._twilio.clear()
        self._vobiz.clear()
        await self._http.aclose()
