"""Roles and what each may do. Every route declares the one permission it needs (api/deps.py `require`).

| permission          | member | admin | owner | API key            |
|---------------------|--------|-------|-------|--------------------|
| *:read, calls:export| yes    | yes   | yes   | per its role       |
| agents/numbers/carriers/webhooks write | no | yes | yes | per its role  |
| secrets (names and dates; values write-only) | no | yes | yes | per its role |
| members, invitations, api keys | no | yes | yes | never (users only)  |
| organisation settings, audit log | no | yes | yes | never          |
| grant or remove the owner role | no | no | yes | never             |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


RoleName = Literal["owner", "admin", "member"]
ROLE_RANK = {Role.member: 1, Role.admin: 2, Role.owner: 3}


class Permission(StrEnum):
    org_read = "org:read"
    org_update = "org:update"
    members_read = "members:read"
    members_manage = "members:manage"
    invitations_manage = "invitations:manage"
    api_keys_manage = "api_keys:manage"
    audit_read = "audit:read"
    agents_read = "agents:read"
    agents_write = "agents:write"
    numbers_read = "numbers:read"
    numbers_write = "numbers:write"
    carriers_read = "carriers:read"
    carriers_write = "carriers:write"
    calls_read = "calls:read"
    calls_export = "calls:export"
    calls_delete = "calls:delete"  # delete calls, forget a phone number, set retention
    calls_supervise = "calls:supervise"  # act on a live call: whisper to the agent
    recordings_read = "recordings:read"
    webhooks_read = "webhooks:read"
    webhooks_write = "webhooks:write"
    analytics_read = "analytics:read"
    campaigns_read = "campaigns:read"
    campaigns_write = "campaigns:write"
    dnc_read = "dnc:read"
    dnc_write = "dnc:write"  # add numbers (restricting calls is always allowed to members)
    dnc_manage = "dnc:manage"  # remove numbers
    secrets_read = "secrets:read"  # names and dates only: values are write-only
    secrets_write = "secrets:write"


_MEMBER = {
    Permission.org_read, Permission.members_read, Permission.agents_read, Permission.numbers_read,
    Permission.calls_read, Permission.calls_export, Permission.recordings_read, Permission.analytics_read,
    Permission.campaigns_read, Permission.dnc_read, Permission.dnc_write,
}
_ADMIN = _MEMBER | {
    Permission.org_update, Permission.members_manage, Permission.invitations_manage, Permission.api_keys_manage,
    Permission.audit_read, Permission.agents_write, Permission.numbers_write, Permission.carriers_read,
    Permission.carriers_write, Permission.webhooks_read, Permission.webhooks_write,
    Permission.campaigns_write, Permission.dnc_manage, Permission.secrets_read, Permission.secrets_write,
    Permission.calls_delete, Permission.calls_supervise,
}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.member: frozenset(_MEMBER),
    Role.admin: frozenset(_ADMIN),
    Role.owner: frozenset(_ADMIN),
}
# Identity and access management stays with people: a leaked key cannot mint more keys or add members.
USERS_ONLY = frozenset({
    Permission.members_manage, Permission.invitations_manage, Permission.api_keys_manage, Permission.org_update,
    Permission.audit_read,
})


@dataclass(frozen=True)
class Principal:
    """Who is calling, in which organisation, with which role. Every service call is scoped by `org_id`."""

    org_id: str
    role: Role
    user_id: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"api_key:{self.api_key_id}"

    def can(self, permission: Permission) -> bool:
        if permission in USERS_ONLY and not self.is_user:
            return False
        return permission in ROLE_PERMISSIONS[self.role]
