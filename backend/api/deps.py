"""Dependencies: services, the calling principal, permission checks, and service-token auth for /internal."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.errors import forbidden, unauthorized
from backend.security.opaque import API_KEY_PREFIX
from backend.security.permissions import Permission, Principal
from backend.services.container import Services
from core.service_auth import ServiceTokenError, verify_service_token

bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login, or an API key.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Organisation API key.")
service_bearer = HTTPBearer(auto_error=False, scheme_name="ServiceToken",
                            description="Short-lived service token (core.service_auth), internal API only.")


async def get_services(request: Request) -> Services:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
    # request that cost more CPU than the request's own work at 500 requests/s.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def client_ip(request: Request) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the last X-Forwarded-For hop that is
    not one of ours (earlier hops are whatever the client chose to write)."""
    peer = request.client.host if request.client else "unknown"
    trusted = [ipaddress.ip_network(n, strict=False) for n in request.app.state.settings.trusted_proxies]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return peer


async def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    if api_key:
        return await services.auth.principal_from_api_key(api_key)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    token = credentials.credentials
    if token.startswith(f"{API_KEY_PREFIX}_"):
        return await services.auth.principal_from_api_key(token)
    return await services.auth.principal_from_access_token(token)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """`Depends(require(Permission.x))`: the principal, or 403 when its role lacks the permission."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            raise forbidden(f"Your role ({principal.role.value}) cannot do this ({permission.value})"
                            if principal.is_user else f"API keys cannot do this ({permission.value})")
        return principal

    check.__name__ = f"require_{permission.name}"
    return check


# One alias per permission, so a route says what it needs in its signature: `principal: AgentsWrite`.
OrgRead = Annotated[Principal, Depends(require(Permission.org_read))]
OrgUpdate = Annotated[Principal, Depends(require(Permission.org_update))]
MembersRead = Annotated[Principal, Depends(require(Permission.members_read))]
MembersManage = Annotated[Principal, Depends(require(Permission.members_manage))]
InvitationsManage = Annotated[Principal, Depends(require(Permission.invitations_manage))]
ApiKeysManage = Annotated[Principal, Depends(require(Permission.api_keys_manage))]
AuditRead = Annotated[Principal, Depends(require(Permission.audit_read))]
AgentsRead = Annotated[Principal, Depends(require(Permission.agents_read))]
AgentsWrite = Annotated[Principal, Depends(require(Permission.agents_write))]
NumbersRead = Annotated[Principal, Depends(require(Permission.numbers_read))]
NumbersWrite = Annotated[Principal, Depends(require(Permission.numbers_write))]
CarriersRead = Annotated[Principal, Depends(require(Permission.carriers_read))]
CarriersWrite = Annotated[Principal, Depends(require(Permission.carriers_write))]
SecretsRead = Annotated[Principal, Depends(require(Permission.secrets_read))]
SecretsWrite = Annotated[Principal, Depends(require(Permission.secrets_write))]
CallsRead = Annotated[Principal, Depends(require(Permission.calls_read))]
CallsExport = Annotated[Principal, Depends(require(Permission.calls_export))]
CallsDelete = Annotated[Principal, Depends(require(Permission.calls_delete))]
CallsSupervise = Annotated[Principal, Depends(require(Permission.calls_supervise))]
RecordingsRead = Annotated[Principal, Depends(require(Permission.recordings_read))]
WebhooksRead = Annotated[Principal, Depends(require(Permission.webhooks_read))]
WebhooksWrite = Annotated[Principal, Depends(require(Permission.webhooks_write))]
AnalyticsRead = Annotated[Principal, Depends(require(Permission.analytics_read))]


async def service_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(service_bearer)]
) -> str:
    """The internal API accepts only service tokens (audience voiceagent-internal), never user tokens or API keys."""
    if credentials is None:
        raise unauthorized("Service token required")
    secret = request.app.state.settings.service_token_secret.get_secret_value()
    try:
        return verify_service_token(secret, credentials.credentials)
    except ServiceTokenError:
        raise unauthorized("Invalid service token", code="invalid_service_token") from None


ServiceCaller = Annotated[str, Depends(service_caller)]
