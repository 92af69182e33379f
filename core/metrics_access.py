"""Who may read a service's Prometheus /metrics: scrapers with the bearer token or, when no token is set, only
processes on the same host. Metrics name routes, call counts and errors; an open /metrics on a public port is a
reconnaissance gift, and "scrape from a private network" was a promise nothing enforced."""

from __future__ import annotations

import hmac
import ipaddress


def metrics_allowed(token: str, authorization: str | None, client_host: str | None, forwarded: bool) -> bool:
    """`forwarded`: the request came through a proxy (X-Forwarded-For), so a loopback peer says nothing."""
    if token:
        return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())
    if forwarded or not client_host:
        return False
    try:
        return ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False
