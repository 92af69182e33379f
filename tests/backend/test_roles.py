"""Each role (and API keys of each role) on each route: refused with 403 exactly where the permission table says."""

from __future__ import annotations

import httpx
from backend_routes import ROUTES, SESSION_ROUTES, openapi_routes, template_of
from backend_testkit import populate_org
from fastapi import FastAPI

from backend.security.permissions import Principal, Role
from backend.services.container import Services

MISSING = "0" * 32


def test_matrix_covers_every_route(backend: FastAPI) -> None:
    covered = {(case.method, template_of(case)) for case in ROUTES} | SESSION_ROUTES
    assert openapi_routes(backend.openapi()) == covered


async def test_each_role_on_each_route(client: httpx.AsyncClient, services: Services) -> None:
    org = await populate_org(client, services.store, "roles")
    callers = {
        ("owner", True): org.owner.headers, ("admin", True): org.admin.headers, ("member", True): org.member.headers,
        ("admin", False): {"X-API-Key": org.admin_key}, ("member", False): {"X-API-Key": org.member_key},
    }
    values = {**org.values(), "del_member_id": MISSING, "del_invitation_id": MISSING, "del_api_key_id": MISSING,
              "del_carrier": "vobiz", "del_agent_id": MISSING, "del_number_id": MISSING, "del_webhook_id": MISSING, "del_call_id": MISSING}
    failures = []
    for (role, is_user), headers in callers.items():
        principal = Principal(org_id=org.owner.org_id, role=Role(role), user_id="u" if is_user else None,
                              api_key_id=None if is_user else "k")
        for case in ROUTES:
            allowed = (case.permission is None or principal.can(case.permission)) and (is_user or not case.users_only)
            body = case.body(values) if case.body else None
            resp = await client.request(case.method, case.url(values), json=body, headers=headers)
            ok = resp.status_code == 403 if not allowed else resp.status_code not in (401, 403) and resp.status_code < 500
            if not ok:
                failures.append(f"{role}{'' if is_user else ' key'} {case.method} {case.path}: {resp.status_code} "
                                f"(expected {'403' if not allowed else 'allowed'}) {resp.text[:120]}")
            if resp.status_code == 403:
                assert resp.json()["error"]["code"] == "forbidden"
    assert not failures, "\n".join(failures)


async def test_unauthenticated_requests_get_401(client: httpx.AsyncClient) -> None:
    values = {k: MISSING for k in ("org_id", "agent_id", "number_id", "webhook_id", "call_id", "member_id",
                                   "del_member_id", "del_invitation_id", "del_api_key_id", "del_agent_id",
                                   "del_number_id", "del_webhook_id", "del_call_id")}
    values["del_carrier"] = "twilio"
    for case in ROUTES:
        resp = await client.request(case.method, case.url(values), json=case.body(values) if case.body else None)
        assert resp.status_code == 401, (case.method, case.path, resp.status_code)
        assert resp.json()["error"]["code"] == "unauthorized"
