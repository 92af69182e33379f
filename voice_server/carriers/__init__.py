"""Carrier REST clients (hang up, transfer, place calls), shared by the voice server and the dialer.

`CarrierClients` keeps one client per set of credentials for the life of the process; `for_credentials` is the
entry point. Tests point `CarrierCredentials.api_base_url` at the fake carrier (voice_server/testing/fake_carrier.py).
"""

from voice_server.carriers.base import (
    CarrierClient,
    CarrierError,
    OutboundCallRequest,
    OutboundCallResult,
)
from voice_server.carriers.registry import CarrierClients
from voice_server.carriers.twilio import TwilioRestClient
from voice_server.carriers.vobiz import VobizRestClient

__all__ = [
    "CarrierClient",
    "CarrierClients",
    "CarrierError",
    "OutboundCallRequest",
    "OutboundCallResult",
    "TwilioRestClient",
    "VobizRestClient",
]
