"""/api/v1/org/secrets: the organisation's secrets (keys for its own AI endpoints, headers for its tools).

Write-only: a value is accepted by PUT and never returned; lists show names, a mask and dates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from backend.api.deps import SecretsRead, SecretsWrite, ServicesDep
from backend.api.responses import AUTHENTICATED, NOT_FOUND
from backend.models.secrets import SecretIn, SecretOut

router = APIRouter(prefix="/org/secrets", tags=["organization"], responses=AUTHENTICATED)
Name = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


@router.get("")
async def list_secrets(principal: SecretsRead, services: ServicesDep) -> list[SecretOut]:
    return await services.secrets.list_masked(principal)


@router.put("/{name}", responses={status.HTTP_201_CREATED: {"model": SecretOut}})
async def put_secret(name: Name, body: SecretIn, principal: SecretsWrite, services: ServicesDep,
                     response: Response) -> SecretOut:
    """Creates the secret (201) or rotates it (200, version + 1): calls that start afterwards use the new value."""
    secret, created = await services.secrets.put(principal, name, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return secret


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_secret(name: Name, principal: SecretsWrite, services: ServicesDep) -> Response:
    await services.secrets.delete(principal, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
