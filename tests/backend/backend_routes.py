"""Every public route of the backend with the permission it needs and a valid request, for the role and tenancy
matrices. `{name}` placeholders are filled per test; `del_*` ones name what a DELETE targets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend_testkit import AGENT_CONFIG, unique_number

from backend.security.permissions import Permission as P

Body = Callable[[dict[str, str]], Any] | None


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    permission: P | None  # None: any authenticated caller
    body: Body = None
    users_only: bool = False

    def url(self, values: dict[str, str]) -> str:
        return self.path.format(**values)


def _email(_: dict[str, str]) -> dict[str, str]:
    return {"email": f"invitee-{uuid.uuid4().hex[:8]}@example.com", "role": "member"}


ROUTES: list[RouteCase] = [
    RouteCase("GET", "/api/v1/auth/me", None),
    RouteCase("POST", "/api/v1/auth/switch-organization", None, lambda v: {"organization_id": v["org_id"]},
              users_only=True),
    RouteCase("GET", "/api/v1/org", P.org_read),
    RouteCase("PATCH", "/api/v1/org", P.org_update, lambda v: {"name": "Renamed org"}),
    RouteCase("GET", "/api/v1/org/members", P.members_read),
    RouteCase("PATCH", "/api/v1/org/members/{member_id}", P.members_manage, lambda v: {"role": "member"}),
    RouteCase("DELETE", "/api/v1/org/members/{del_member_id}", P.members_manage),
    RouteCase("POST", "/api/v1/org/invitations", P.invitations_manage, _email),
    RouteCase("GET", "/api/v1/org/invitations", P.invitations_manage),
    RouteCase("DELETE", "/api/v1/org/invitations/{del_invitation_id}", P.invitations_manage),
    RouteCase("POST", "/api/v1/org/api-keys", P.api_keys_manage, lambda v: {"name": "matrix key"}),
    RouteCase("GET", "/api/v1/org/api-keys", P.api_keys_manage),
    RouteCase("DELETE", "/api/v1/org/api-keys/{del_api_key_id}", P.api_keys_manage),
    RouteCase("GET", "/api/v1/org/carrier-credentials", P.carriers_read),
    RouteCase("PUT", "/api/v1/org/carrier-credentials/vobiz", P.carriers_write,
              lambda v: {"account_id": "MA_MATRIX_ACCOUNT_0001", "auth_token": "matrix-token-value"}),
    RouteCase("DELETE", "/api/v1/org/carrier-credentials/{del_carrier}", P.carriers_write),
    RouteCase("GET", "/api/v1/org/audit-log", P.audit_read),
    RouteCase("GET", "/api/v1/org/secrets", P.secrets_read),
    RouteCase("PUT", "/api/v1/org/secrets/matrix-secret", P.secrets_write, lambda v: {"value": "s3cret"}),
    RouteCase("DELETE", "/api/v1/org/secrets/matrix-gone", P.secrets_write),
    RouteCase("GET", "/api/v1/org/billing", P.org_read),
    RouteCase("GET", "/api/v1/analytics/costs", P.analytics_read),
    RouteCase("PUT", "/api/v1/org/billing/price-book", P.org_update, lambda v: {}),
    RouteCase("PUT", "/api/v1/org/billing/budget", P.org_update, lambda v: {"monthly_budget": None}),
    RouteCase("POST", "/api/v1/calls", P.campaigns_write, lambda v: {
        "agent_id": v["agent_id"], "from_number": "+14155550100", "to_number": "+14155550101"}),
    RouteCase("GET", "/api/v1/agents", P.agents_read),
    RouteCase("GET", "/api/v1/agents/defaults", P.agents_read),
    RouteCase("POST", "/api/v1/agents", P.agents_write, lambda v: {"name": "Matrix agent", "config": AGENT_CONFIG}),
    RouteCase("GET", "/api/v1/agents/{agent_id}", P.agents_read),
    RouteCase("PATCH", "/api/v1/agents/{agent_id}", P.agents_write, lambda v: {"description": "patched"}),
    RouteCase("PUT", "/api/v1/agents/{agent_id}", P.agents_write, lambda v: {"description": "saved"}),
    RouteCase("DELETE", "/api/v1/agents/{del_agent_id}", P.agents_write),
    RouteCase("GET", "/api/v1/agents/{agent_id}/versions", P.agents_read),
    RouteCase("GET", "/api/v1/agents/{agent_id}/versions/1", P.agents_read),
    RouteCase("POST", "/api/v1/agents/{agent_id}/versions/1/restore", P.agents_write),
    RouteCase("POST", "/api/v1/agents/{agent_id}/test-runs", P.agents_write, lambda v: {
        "version": 1, "suite": "matrix.yaml", "results": [{"name": "greets", "status": "passed"}]}),
    RouteCase("GET", "/api/v1/agents/{agent_id}/test-runs", P.agents_read),
    # A keypad scenario: the queued run is skipped without placing a call. An unknown run id: 404 is "allowed".
    RouteCase("POST", "/api/v1/agents/{agent_id}/test-runs/start", P.agents_write, lambda v: {
        "suite_yaml": "scenarios: [{name: keys, caller: [{keys: '1'}]}]"}),
    RouteCase("GET", "/api/v1/agents/{agent_id}/test-runs/matrixrun", P.agents_read),
    # Knowledge bases: the id routes use one that does not exist (404 is "allowed"; a denied role gets 403 first).
    RouteCase("GET", "/api/v1/knowledge-bases", P.agents_read),
    RouteCase("POST", "/api/v1/knowledge-bases", P.agents_write, lambda v: {"name": "Matrix KB"}),
    RouteCase("GET", "/api/v1/knowledge-bases/matrixkb", P.agents_read),
    RouteCase("PATCH", "/api/v1/knowledge-bases/matrixkb", P.agents_write, lambda v: {"name": "Renamed"}),
    RouteCase("DELETE", "/api/v1/knowledge-bases/matrixkb", P.agents_write),
    RouteCase("GET", "/api/v1/knowledge-bases/matrixkb/sources", P.agents_read),
    RouteCase("POST", "/api/v1/knowledge-bases/matrixkb/sources", P.agents_write),
    RouteCase("POST", "/api/v1/knowledge-bases/matrixkb/sources/text", P.agents_write,
              lambda v: {"name": "Hours", "text": "Open 9 to 5."}),
    RouteCase("DELETE", "/api/v1/knowledge-bases/matrixkb/sources/matrixsrc", P.agents_write),
    RouteCase("POST", "/api/v1/knowledge-bases/matrixkb/search", P.agents_read, lambda v: {"question": "When?"}),
    RouteCase("GET", "/api/v1/phone-numbers", P.numbers_read),
    RouteCase("POST", "/api/v1/phone-numbers", P.numbers_write,
              lambda v: {"number": unique_number(), "carrier": "twilio"}),
    RouteCase("GET", "/api/v1/phone-numbers/{number_id}", P.numbers_read),
    RouteCase("PATCH", "/api/v1/phone-numbers/{number_id}", P.numbers_write, lambda v: {"label": "relabelled"}),
    RouteCase("POST", "/api/v1/phone-numbers/{number_id}/verify", P.numbers_write),
    RouteCase("DELETE", "/api/v1/phone-numbers/{del_number_id}", P.numbers_write),
    RouteCase("GET", "/api/v1/calls", P.calls_read),
    RouteCase("GET", "/api/v1/calls/export.csv", P.calls_export),
    RouteCase("GET", "/api/v1/calls/{call_id}", P.calls_read),
    RouteCase("GET", "/api/v1/calls/{call_id}/recording", P.recordings_read),
    RouteCase("GET", "/api/v1/calls/{call_id}/recording/audio", P.recordings_read),
    RouteCase("DELETE", "/api/v1/calls/{del_call_id}", P.calls_delete),
    RouteCase("GET", "/api/v1/live/calls", P.calls_read),
    RouteCase("POST", "/api/v1/live/calls/{call_id}/listen", P.calls_supervise),
    RouteCase("POST", "/api/v1/live/calls/{call_id}/takeover", P.calls_supervise),
    RouteCase("POST", "/api/v1/live/calls/{call_id}/whisper", P.calls_supervise, lambda v: {"text": "Offer a refund"}),
    RouteCase("GET", "/api/v1/privacy/retention", P.org_read),
    RouteCase("PUT", "/api/v1/privacy/retention", P.calls_delete, lambda v: {"recordings_days": 30}),
    RouteCase("GET", "/api/v1/privacy/erasures", P.audit_read),
    RouteCase("POST", "/api/v1/privacy/forget-number", P.calls_delete, lambda v: {"number": "+14155550177"}),
    RouteCase("GET", "/api/v1/webhooks", P.webhooks_read),
    RouteCase("POST", "/api/v1/webhooks", P.webhooks_write,
              lambda v: {"url": "http://127.0.0.1:9/hook", "events": ["call.ended"], "active": False}),
    RouteCase("GET", "/api/v1/webhooks/{webhook_id}", P.webhooks_read),
    RouteCase("PATCH", "/api/v1/webhooks/{webhook_id}", P.webhooks_write, lambda v: {"description": "patched"}),
    RouteCase("DELETE", "/api/v1/webhooks/{del_webhook_id}", P.webhooks_write),
    RouteCase("GET", "/api/v1/webhooks/{webhook_id}/deliveries", P.webhooks_read),
    RouteCase("POST", "/api/v1/webhooks/{webhook_id}/test", P.webhooks_write),
    RouteCase("GET", "/api/v1/analytics/summary", P.analytics_read),
    RouteCase("GET", "/api/v1/voices", P.agents_read),
    RouteCase("POST", "/api/v1/voices/sample", P.agents_read, lambda v: {"voice": "en_US-joe-medium", "text": "Hi."}),
    RouteCase("POST", "/api/v1/test-calls", P.agents_write, lambda v: {"agent_id": v["agent_id"]}),
]
# Covered in test_auth (they end or change the caller's own session) and not part of the matrices.
SESSION_ROUTES = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/login"),
                  ("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/invitations/accept")}


# Campaign and do-not-call routes (issue 6) are tested by the campaign suite, which can add its cases here.
OTHER_SUITES = ("/api/v1/campaign", "/api/v1/dnc")


def openapi_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    out = set()
    for path, methods in spec["paths"].items():
        if path.startswith("/api/v1") and not path.startswith(OTHER_SUITES):
            for method in methods:
                if not path.endswith("/stream"):  # endless event streams: tests/backend/test_live.py
                    out.add((method.upper(), path))
    return out


def template_of(case: RouteCase) -> str:
    """The OpenAPI path of a case ("/agents/{agent_id}/versions/1" -> "/agents/{agent_id}/versions/{version}")."""
    replacements = {
        "{member_id}": "{user_id}", "{del_member_id}": "{user_id}", "{del_invitation_id}": "{invitation_id}",
        "{del_api_key_id}": "{key_id}", "{del_carrier}": "{carrier}", "/carrier-credentials/vobiz":
        "/carrier-credentials/{carrier}", "{del_agent_id}": "{agent_id}", "/versions/1": "/versions/{version}",
        "{del_number_id}": "{number_id}", "{del_webhook_id}": "{webhook_id}",
        "/secrets/matrix-secret": "/secrets/{name}", "/secrets/matrix-gone": "/secrets/{name}",
        "{del_call_id}": "{call_id}", "/knowledge-bases/matrixkb": "/knowledge-bases/{kb_id}",
        "/sources/matrixsrc": "/sources/{source_id}", "/test-runs/matrixrun": "/test-runs/{run_id}",
    }
    path = case.path
    for old, new in replacements.items():
        path = path.replace(old, new)
    return path
