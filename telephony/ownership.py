"""Does the organisation's carrier account own this number? Asked of the carrier's own API with the organisation's
credentials, before the number may route calls: otherwise any tenant could claim any number and receive its calls.

Twilio: GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json?PhoneNumber=+E164 (HTTP basic auth); the
number is owned when the list holds it. Vobiz: GET /api/v1/Account/{auth_id}/Number/{number}/ (X-Auth-ID /
X-Auth-Token; the Plivo-family numbers resource Vobiz inherits, not in our protocol fact sheet): 200 owned, 404
not. The fake carrier (voice_server/testing/fake_carrier.py) serves both. Used by the backend when a number is
listed or verified.
"""

from __future__ import annotations

from enum import Enum

import httpx

from core.call_events import CarrierCredentials

TWILIO_API_BASE = "https://api.twilio.com"
VOBIZ_API_BASE = "https://api.vobiz.ai"


class Ownership(Enum):
    OWNED = "owned"
    NOT_OWNED = "not_owned"
    CREDENTIALS_REJECTED = "credentials_rejected"
    UNREACHABLE = "unreachable"


async def carrier_owns(http: httpx.AsyncClient, creds: CarrierCredentials, e164: str) -> Ownership:
    try:
        if creds.carrier == "twilio":
            base = (creds.api_base_url or TWILIO_API_BASE).rstrip("/")
            resp = await http.get(f"{base}/2010-04-01/Accounts/{creds.account_id}/IncomingPhoneNumbers.json",
                                  params={"PhoneNumber": e164}, auth=(creds.account_id, creds.auth_token),
                                  timeout=10.0)
        else:
            base = (creds.api_base_url or VOBIZ_API_BASE).rstrip("/").removesuffix("/api/v1")
            resp = await http.get(f"{base}/api/v1/Account/{creds.account_id}/Number/{e164.lstrip('+')}/",
                                  headers={"X-Auth-ID": creds.account_id, "X-Auth-Token": creds.auth_token},
                                  timeout=10.0)
    except httpx.HTTPError:
        return Ownership.UNREACHABLE
    if resp.status_code in (401, 403):
        return Ownership.CREDENTIALS_REJECTED
    if resp.status_code == 404:
        return Ownership.NOT_OWNED
    if not resp.is_success:
        return Ownership.UNREACHABLE
    if creds.carrier == "vobiz":
        return Ownership.OWNED
    try:
        listed = resp.json().get("incoming_phone_numbers") or []
    except ValueError:
        return Ownership.UNREACHABLE
    return Ownership.OWNED if any(n.get("phone_number") == e164 for n in listed) else Ownership.NOT_OWNED
