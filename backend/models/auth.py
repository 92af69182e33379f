"""Authentication requests and responses."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, EmailStr, Field

from backend.models.common import ApiModel
from backend.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from backend.security.permissions import RoleName

Password = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, examples=["correct-horse-battery"])


class RegisterRequest(ApiModel):
    email: EmailStr = Field(examples=["ada@example.com"])
    password: str = Password
    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    org_name: str = Field(min_length=1, max_length=100, examples=["Analytical Engines Ltd"])


class LoginRequest(ApiModel):
    email: EmailStr = Field(examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, examples=["correct-horse-battery"])
    organization_id: str | None = Field(default=None, description="Which organisation; default: the first joined.")


class RefreshRequest(ApiModel):
    refresh_token: str | None = Field(
        default=None, max_length=300, description="Omit to use the httpOnly refresh cookie set at login."
    )


class LogoutRequest(ApiModel):
    refresh_token: str | None = Field(default=None, max_length=300)
    all_sessions: bool = Field(default=False, description="Also end every other session of this user.")


class SwitchOrganizationRequest(ApiModel):
    organization_id: str = Field(min_length=1, max_length=64)


class AcceptInvitationRequest(ApiModel):
    token: str = Field(min_length=10, max_length=300)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH,
                          description="A new password, or the existing one when the email already has an account.")
    name: str | None = Field(default=None, max_length=100)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str = Field(description="Single use: each refresh returns a new one; reusing an old one ends the session.")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])
    organization_id: str
    role: RoleName


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None = None


class OrgOut(BaseModel):
    id: str
    name: str
    created_at: datetime | None = None
    allow_custom_endpoints: bool = Field(default=False, description="Agents may use their own AI endpoints (never "
                                                                    "with the platform's keys).")


class MembershipOut(BaseModel):
    org: OrgOut
    role: RoleName


class MeResponse(BaseModel):
    user: UserOut | None = Field(description="Null when the caller is an API key.")
    org: OrgOut
    role: RoleName
    organizations: list[MembershipOut] = Field(default_factory=list)
    api_key_id: str | None = None
