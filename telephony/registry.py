"""The carriers we speak, by name, and one REST client per set of carrier credentials for the life of a process.

A new carrier is one line in `CARRIERS` (and its module, see docs/architecture.md "Adding a carrier").
"""

from __future__ import annotations

import httpx

from core.call_events import CarrierCredentials
from telephony.base import Carrier, CarrierClient
from telephony.twilio import Twilio
from telephony.vobiz import Vobiz

CARRIERS: dict[str, Carrier] = {carrier.name: carrier for carrier in (Twilio(), Vobiz())}


def carrier_named(name: str) -> Carrier:
    """Raises KeyError for a carrier we do not speak."""
    return CARRIERS[name]


class CarrierClients:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=200))
        self._clients: dict[tuple[str, str, str, str], CarrierClient] = {}

    def for_credentials(self, credentials: CarrierCredentials) -> CarrierClient:
        key = (credentials.carrier, credentials.account_id, credentials.auth_token, credentials.api_base_url or "")
        if key not in self._clients:
            self._clients[key] = CARRIERS[credentials.carrier].rest_client(credentials, self._http, self._timeout_s)
        return self._clients[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self._http.aclose()
