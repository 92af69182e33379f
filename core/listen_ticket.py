"""Supervisor tickets: the backend lets a supervisor's browser listen in to, or take over, one live call on the voice
server that holds it.

A ticket is a short-lived JWT for `{purpose}:{call_id}` (purpose `listen` or `takeover`, so a listen-in ticket
cannot take a call over), signed with a key derived from SERVICE_TOKEN_SECRET for this
purpose alone: it is handed to a browser, so it must not pass as a service token (which opens /internal APIs), and
a service token must not pass as a ticket either.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from core.service_auth import ServiceTokenError, mint_service_token, verify_service_token

TICKET_TTL_S = 60
TicketPurpose = Literal["listen", "takeover"]


def _key(service_secret: str) -> str:
    if not service_secret:
        raise ServiceTokenError("SERVICE_TOKEN_SECRET is not set")
    return hmac.new(service_secret.encode(), b"voiceagent listen-in ticket v1", hashlib.sha256).hexdigest()


def mint_listen_ticket(service_secret: str, call_id: str, ttl_s: int = TICKET_TTL_S,
                       purpose: TicketPurpose = "listen") -> str:
    return mint_service_token(_key(service_secret), f"{purpose}:{call_id}", ttl_s=ttl_s)


def ticket_allows(service_secret: str, ticket: str, call_id: str, purpose: TicketPurpose = "listen") -> bool:
    try:
        return verify_service_token(_key(service_secret), ticket) == f"{purpose}:{call_id}"
    except ServiceTokenError:
        return False
