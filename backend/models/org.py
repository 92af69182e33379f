"""Organisation settings, members, invitations, API keys, carrier credentials, audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field

from backend.models.common import ApiModel
from backend.security.permissions import RoleName

Carrier = Literal["twilio", "vobiz"]


class OrgUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    allow_custom_endpoints: bool | None = Field(
        default=None, description="Let agents use their own AI endpoints (base_url). They never get the platform's "
                                  "keys, and internal addresses stay refused.")


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str | None = None
    role: RoleName
    joined_at: datetime | None = None


class MemberUpdate(ApiModel):
    role: RoleName


class InvitationCreate(ApiModel):
    email: EmailStr = Field(examples=["grace@example.com"])
    role: RoleName = "member"


class InvitationOut(BaseModel):
    id: str
    email: str
    role: RoleName
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None
    token: str | None = Field(default=None, description="Only in the create response: single use, send it to the invitee.")
    accept_url: str | None = Field(default=None, description="Only in the create response.")


class ApiKeyCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, examples=["CRM sync"])
    role: Literal["admin", "member"] = Field(default="member", description="At most the creator's own role.")
    expires_at: datetime | None = Field(default=None, description="When the key stops working (future, at most "
                                                                  "a year ahead); empty: until revoked.")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: RoleName
    prefix: str = Field(description="The start of the key, to recognise it.")
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    key: str | None = Field(default=None, description="Only in the create response; store it now, it is never shown again.")


class CarrierCredentialsIn(ApiModel):
    account_id: str = Field(min_length=1, max_length=128, description="Twilio Account SID / Vobiz auth id.",
                            examples=["AC0123456789abcdef0123456789abcdef"])
    auth_token: str = Field(min_length=1, max_length=256, examples=["your-auth-token"])


class CarrierCredentialsOut(BaseModel):
    carrier: Carrier
    account_id_masked: str = Field(examples=["AC••••••cdef"])
    auth_token_masked: str = Field(examples=["••••••••"])
    updated_at: datetime | None = None


class AuditEntryOut(BaseModel):
    id: str
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
