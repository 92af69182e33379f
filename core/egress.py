"""The one gate for every outbound request made on a tenant's behalf (webhook tools, outgoing webhooks, custom AI
endpoints, carrier API calls): tenant-supplied URLs must not reach the platform's own network.

A host is resolved once; every address it resolves to must be public (no loopback, private, shared, link-local,
multicast, reserved or unspecified address, in IPv4, IPv6 or an IPv6 form that embeds IPv4: mapped, compatible,
6to4, NAT64, Teredo). The connection then goes to the address that was checked, with the original Host header and
TLS server name, so a DNS answer that changes between check and connect (rebinding) changes nothing. Redirects are
not followed. Operators permit specific internal services with EGRESS_ALLOWED_HOSTS (host:port pairs).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class EgressRefused(Exception):
    """The target is internal (or cannot be resolved); the message says why, without echoing secrets."""


class EgressBlocked(httpx.ConnectError):
    """Raised by EgressTransport: the request was never sent (a permanent failure, not worth retrying)."""


class EgressSettings(BaseSettings):
    """Mixed into the settings of every service that calls out for tenants (backend, voice server)."""

    # host:port pairs tenants' requests may reach even though they are internal, e.g. "crm.internal:443". A port of
    # "*" allows every port of that host (local development and tests only). Empty: public addresses only.
    egress_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("egress_allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("egress_allowed_hosts")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, sep, port = entry.rpartition(":")
            if not sep or not host or not (port == "*" or port.isdigit()):
                raise ValueError(f"{entry!r}: EGRESS_ALLOWED_HOSTS entries are host:port (or host:*)")
        return value

    def egress_policy(self) -> EgressPolicy:
        return EgressPolicy.parse(self.egress_allowed_hosts)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why a connection to `ip` is refused, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return refusal(inner)
    for flag in ("is_loopback", "is_unspecified", "is_link_local", "is_multicast", "is_private", "is_reserved"):
        if getattr(ip, flag):
            return f"{flag[3:].replace('_', '-')} address"
    if not ip.is_global:
        return "non-global address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressPolicy:
    allowed: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, entries: list[str]) -> EgressPolicy:
        pairs = set()
        for entry in entries:
            host, _, port = entry.rpartition(":")
            pairs.add((host.strip("[]").lower(), port))
        return cls(frozenset(pairs))

    def allows(self, host: str, port: int) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        return (host, str(port)) in self.allowed or (host, "*") in self.allowed

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to: checked, or allowed by the operator. Raises EgressRefused."""
        if not host:
            raise EgressRefused("no host")
        allowed = self.allows(host, port)
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            if host.lower().rstrip(".") in ("localhost",) or host.lower().endswith((".localhost", ".localhost.")):
                if not allowed:
                    raise EgressRefused(f"{host}: loopback name")
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise EgressRefused(f"{host}: cannot resolve ({exc.strerror or exc})") from None
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
            if not addresses:
                raise EgressRefused(f"{host}: no address")
        if not allowed:
            for address in addresses:
                why = refusal(address)
                if why is not None:
                    raise EgressRefused(f"{host} resolves to a {why}")
        return str(addresses[0])

    async def check_url(self, url: str) -> str:
        """Checks an http(s) URL; returns the checked address. Raises EgressRefused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise EgressRefused(f"scheme {parts.scheme!r} is not allowed")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise EgressRefused("bad port") from None
        return await self.resolve(parts.hostname or "", port)

    def static_refusal(self, url: str) -> str | None:
        """Without DNS (for validating a URL when it is saved): a refused literal address or loopback name."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "bad port"
        if self.allows(host, port):
            return None
        if host == "localhost" or host.endswith(".localhost"):
            return "loopback name"
        literal = _literal(host)
        return refusal(literal) if literal is not None else None


async def pin_request(policy: EgressPolicy, request: Any) -> None:
    """Resolves and checks a request's host, then points the request at the checked address, keeping its Host
    header (set from the name when the request was built) and its TLS server name. Works on httpx and httpx2
    requests alike (the OpenAI SDK uses httpx2). Raises EgressRefused."""
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    address = await policy.resolve(url.host, port)
    if address != url.host:
        request.url = url.copy_with(host=address)
        request.extensions = {**request.extensions, "sni_hostname": url.host}


class EgressTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to checked addresses: every request (each redirect hop too, were one
    followed) is resolved once, checked, and sent to that address with its original Host and TLS server name."""

    def __init__(self, policy: EgressPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            await pin_request(self._policy, request)
        except EgressRefused as exc:
            raise EgressBlocked(f"egress refused: {exc}", request=request) from None
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_client(policy: EgressPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for tenant-supplied URLs: egress-checked, no redirects."""
    return httpx.AsyncClient(transport=EgressTransport(policy), follow_redirects=False, **kwargs)
