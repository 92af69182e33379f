"""/api/v1/webhooks: outgoing webhook subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from backend.api.deps import ServicesDep, WebhooksRead, WebhooksWrite
from backend.api.responses import AUTHENTICATED, NOT_FOUND
from backend.models.webhooks import WebhookCreate, WebhookDeliveryOut, WebhookOut, WebhookUpdate

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=AUTHENTICATED)
WebhookId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("")
async def list_webhooks(principal: WebhooksRead, services: ServicesDep) -> list[WebhookOut]:
    return await services.webhooks.list_webhooks(principal)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookCreate, principal: WebhooksWrite, services: ServicesDep) -> WebhookOut:
    """Deliveries are POSTed as JSON with `X-Voiceagent-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.
    The signing secret is in this response only."""
    return await services.webhooks.create(principal, body)


@router.get("/{webhook_id}", responses=NOT_FOUND)
async def get_webhook(webhook_id: WebhookId, principal: WebhooksRead, services: ServicesDep) -> WebhookOut:
    return await services.webhooks.get(principal, webhook_id)


@router.patch("/{webhook_id}", responses=NOT_FOUND)
async def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, principal: WebhooksWrite, services: ServicesDep
) -> WebhookOut:
    return await services.webhooks.update(principal, webhook_id, body)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(webhook_id: WebhookId, principal: WebhooksWrite, services: ServicesDep) -> Response:
    await services.webhooks.delete(principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", responses=NOT_FOUND)
async def list_webhook_deliveries(
    webhook_id: WebhookId, principal: WebhooksRead, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WebhookDeliveryOut]:
    """Newest first, with the outcome of the last attempt."""
    return await services.webhooks.deliveries(principal, webhook_id, limit)


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def test_webhook(webhook_id: WebhookId, principal: WebhooksWrite, services: ServicesDep) -> WebhookDeliveryOut:
    """Queues a `webhook.test` delivery to this endpoint."""
    return await services.webhooks.send_test(principal, webhook_id)
