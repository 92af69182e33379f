"""/api/v1/org: the caller's organisation, members, invitations, API keys, carrier credentials, audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from backend.api.deps import (
    ApiKeysManage,
    AuditRead,
    CarriersRead,
    CarriersWrite,
    InvitationsManage,
    MembersManage,
    MembersRead,
    OrgRead,
    OrgUpdate,
    ServicesDep,
)
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND
from backend.models.auth import OrgOut
from backend.models.org import (
    ApiKeyCreate,
    ApiKeyOut,
    AuditEntryOut,
    Carrier,
    CarrierCredentialsIn,
    CarrierCredentialsOut,
    InvitationCreate,
    InvitationOut,
    MemberOut,
    MemberUpdate,
)
from backend.models.org import OrgUpdate as OrgUpdateBody

router = APIRouter(prefix="/org", tags=["organization"], responses=AUTHENTICATED)
Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("")
async def get_organization(principal: OrgRead, services: ServicesDep) -> OrgOut:
    return await services.orgs.get(principal)


@router.patch("")
async def update_organization(body: OrgUpdateBody, principal: OrgUpdate, services: ServicesDep) -> OrgOut:
    return await services.orgs.update(principal, body)


@router.get("/members")
async def list_members(principal: MembersRead, services: ServicesDep) -> list[MemberOut]:
    return await services.orgs.members(principal)


@router.patch("/members/{user_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_member(user_id: Id, body: MemberUpdate, principal: MembersManage, services: ServicesDep) -> MemberOut:
    """Changes a member's role. Only owners change owners; the last owner cannot be demoted."""
    return await services.orgs.update_member(principal, user_id, body)


@router.delete("/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def remove_member(user_id: Id, principal: MembersManage, services: ServicesDep) -> Response:
    """Removes the member and ends their sessions in this organisation at once."""
    await services.orgs.remove_member(principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitations", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_invitation(body: InvitationCreate, principal: InvitationsManage, services: ServicesDep) -> InvitationOut:
    """A single-use, expiring invitation. The token is in this response only."""
    return await services.orgs.invite(principal, body)


@router.get("/invitations")
async def list_invitations(principal: InvitationsManage, services: ServicesDep) -> list[InvitationOut]:
    return await services.orgs.invitations(principal)


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_invitation(invitation_id: Id, principal: InvitationsManage, services: ServicesDep) -> Response:
    await services.orgs.revoke_invitation(principal, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, principal: ApiKeysManage, services: ServicesDep) -> ApiKeyOut:
    """The key is shown in this response only; only its hash is stored. Use it as `X-API-Key` or a Bearer token."""
    return await services.orgs.create_api_key(principal, body)


@router.get("/api-keys")
async def list_api_keys(principal: ApiKeysManage, services: ServicesDep) -> list[ApiKeyOut]:
    return await services.orgs.api_keys(principal)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_api_key(key_id: Id, principal: ApiKeysManage, services: ServicesDep) -> Response:
    await services.orgs.revoke_api_key(principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/carrier-credentials")
async def list_carrier_credentials(principal: CarriersRead, services: ServicesDep) -> list[CarrierCredentialsOut]:
    """Masked: the auth token never leaves the backend except to the voice server over the internal API."""
    return await services.carriers.list_masked(principal)


@router.put("/carrier-credentials/{carrier}")
async def put_carrier_credentials(
    carrier: Carrier, body: CarrierCredentialsIn, principal: CarriersWrite, services: ServicesDep
) -> CarrierCredentialsOut:
    """Stores the credentials encrypted (AES-256-GCM); the response is masked."""
    return await services.carriers.put(principal, carrier, body)


@router.delete("/carrier-credentials/{carrier}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_carrier_credentials(carrier: Carrier, principal: CarriersWrite, services: ServicesDep) -> Response:
    await services.carriers.delete(principal, carrier)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit-log")
async def audit_log(
    principal: AuditRead, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[AuditEntryOut]:
    return await services.audit.recent(principal, limit)
