"""/api/v1/auth: register, login, refresh, logout, me, switch organisation, accept an invitation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Cookie, Request, Response, status

from backend.api.deps import PrincipalDep, ServicesDep, client_ip
from backend.api.responses import AUTHENTICATED, CONFLICT, PUBLIC, RATE_LIMITED
from backend.errors import ApiError, unauthorized
from backend.models.auth import (
    AcceptInvitationRequest,
    LoginRequest,
    LogoutRequest,
    MeResponse,
    RefreshRequest,
    RegisterRequest,
    SwitchOrganizationRequest,
    TokenResponse,
)

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "va_refresh"
COOKIE_PATH = "/api/v1/auth"


def _set_refresh_cookie(request: Request, response: Response, tokens: TokenResponse) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        REFRESH_COOKIE, tokens.refresh_token, max_age=settings.refresh_token_ttl_s, path=COOKIE_PATH, httponly=True,
        samesite="strict", secure=settings.public_base_url.startswith("https://"),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, responses={**PUBLIC, **CONFLICT, **RATE_LIMITED})
async def register(body: RegisterRequest, request: Request, response: Response, services: ServicesDep) -> TokenResponse:
    """Creates an organisation with the caller as its owner, and signs in."""
    tokens = await services.auth.register(body, client_ip(request))
    _set_refresh_cookie(request, response, tokens)
    return tokens


@router.post("/login", responses={**PUBLIC, 401: AUTHENTICATED[401], **RATE_LIMITED})
async def login(body: LoginRequest, request: Request, response: Response, services: ServicesDep) -> TokenResponse:
    """A short-lived access token and a single-use refresh token (also set as an httpOnly cookie)."""
    tokens = await services.auth.login(body, client_ip(request))
    _set_refresh_cookie(request, response, tokens)
    return tokens


@router.post("/refresh", responses={**PUBLIC, 401: AUTHENTICATED[401]})
async def refresh(
    request: Request, response: Response, services: ServicesDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
    cookie_token: Annotated[str | None, Cookie(alias=REFRESH_COOKIE, include_in_schema=False)] = None,
) -> TokenResponse:
    """Rotates the refresh token. Presenting an already-used one ends the whole session (token theft)."""
    token = (body.refresh_token if body else None) or cookie_token
    if not token:
        raise unauthorized("Refresh token required", code="invalid_refresh_token")
    tokens = await services.auth.refresh(token)
    _set_refresh_cookie(request, response, tokens)
    return tokens


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=AUTHENTICATED)
async def logout(
    principal: PrincipalDep, services: ServicesDep, response: Response,
    body: Annotated[LogoutRequest | None, Body()] = None,
) -> Response:
    """Ends this session (and with `all_sessions`, every session of this user)."""
    if not principal.is_user:
        raise ApiError(403, "forbidden", "API keys have no session; revoke the key instead")
    await services.auth.logout(principal, body.refresh_token if body else None, bool(body and body.all_sessions))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/me", responses=AUTHENTICATED)
async def me(principal: PrincipalDep, services: ServicesDep) -> MeResponse:
    """The caller, the current organisation and role, and every organisation the user belongs to."""
    return await services.auth.me(principal)


@router.post("/switch-organization", responses={**AUTHENTICATED, 404: {"description": "Not a member"}})
async def switch_organization(
    body: SwitchOrganizationRequest, principal: PrincipalDep, services: ServicesDep, request: Request,
    response: Response,
) -> TokenResponse:
    """New tokens for another organisation the user belongs to."""
    tokens = await services.auth.switch_organization(principal, body.organization_id)
    _set_refresh_cookie(request, response, tokens)
    return tokens


@router.post("/invitations/accept", responses={**PUBLIC, 400: {"description": "Invalid token"},
                                               410: {"description": "Used or expired"}, **RATE_LIMITED})
async def accept_invitation(
    body: AcceptInvitationRequest, request: Request, response: Response, services: ServicesDep
) -> TokenResponse:
    """Joins the inviting organisation (creating the account if the email has none). Each invitation works once."""
    tokens = await services.auth.accept_invitation(body, client_ip(request))
    _set_refresh_cookie(request, response, tokens)
    return tokens
