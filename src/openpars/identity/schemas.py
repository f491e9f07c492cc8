"""Pydantic shapes for agencies, users and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from openpars.identity.roles import AgencyKind, Role
from openpars.ranges import RowId
from openpars.text import Line

ORI_PATTERN = r"^[A-Z]{2}[A-Z0-9]{7}$"


class AgencyCreate(BaseModel):
    """A new agency or sub-unit."""

    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=2, max_length=200)
    kind: AgencyKind
    ori: Line | None = Field(default=None, pattern=ORI_PATTERN, description="9-character ORI")
    parent_id: RowId | None = None


class AgencyRead(BaseModel):
    """An agency as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: AgencyKind
    ori: str | None
    parent_id: int | None


class UserCreate(BaseModel):
    """A new user account."""

    model_config = ConfigDict(extra="forbid")

    username: Line = Field(min_length=2, max_length=100, pattern=r"^[a-z0-9._-]+$")
    display_name: Line = Field(min_length=1, max_length=200)
    agency_id: RowId
    roles: list[Role] = Field(min_length=1)


class UserRolesSet(BaseModel):
    """An existing account's roles, replaced as a whole (separation of duties: identity/duties).

    ``expected_roles`` are the roles the change was decided on (the form shown, the account
    read): if the account's roles differ now, someone changed them meanwhile and the change is
    refused (409 ``roles_changed_meanwhile``) instead of undoing theirs. Omit it to skip the check.
    """

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] = Field(min_length=1)
    expected_roles: list[Role] | None = None


class UserProfile(BaseModel):
    """What oversight compares a user's lookups with: their own surname and home address.

    Both optional; ``null`` clears one. A user looking up a person of their own surname or at
    their own address is flagged (docs/oversight.md, "Detectors")."""

    model_config = ConfigDict(extra="forbid")

    family_name: Line | None = Field(default=None, min_length=1, max_length=100)
    address: Line | None = Field(default=None, min_length=1, max_length=300)


class UserRead(BaseModel):
    """A user account as returned by the API."""

    id: int
    username: str
    display_name: str
    agency_id: int
    roles: list[Role]
    is_active: bool
    mfa_enrolled: bool = False


class TokenCreate(BaseModel):
    """A request for a new API token."""

    model_config = ConfigDict(extra="forbid")

    name: Line = Field(default="api", min_length=1, max_length=100)
    lifetime_days: int | None = Field(default=None, ge=1, le=366)


class TokenRead(BaseModel):
    """A token's metadata (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenIssued(TokenRead):
    """A freshly issued token: the secret is shown this once."""

    token: str


class PasswordSet(BaseModel):
    """A new password: your own (give the current one) or another user's (an admin reset).

    Never logged and never returned; only its Argon2id hash is kept (docs/accounts.md)."""

    model_config = ConfigDict(extra="forbid")

    new_password: Line = Field(min_length=1, max_length=1024)
    current_password: Line | None = Field(default=None, min_length=1, max_length=1024)


class PasswordState(BaseModel):
    """What changed: when, and whether the user must choose a new one at the next logon."""

    user_id: int
    password_changed_at: datetime
    must_change_password: bool


class LogonRequest(BaseModel):
    """A logon with a username and password (``new_password`` after an administrator's reset)."""

    model_config = ConfigDict(extra="forbid")

    username: Line = Field(min_length=1, max_length=100)
    password: Line = Field(min_length=1, max_length=1024)
    new_password: Line | None = Field(default=None, min_length=1, max_length=1024)


class SessionRead(BaseModel):
    """A logon session (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    source_ip: str | None
    user_agent: str | None


class SessionOpened(SessionRead):
    """A new session: ``token`` (also set as the HttpOnly cookie) is shown this once.

    The session does nothing else until its logon is finished: ``stage`` says the next step
    (``one_time_code`` or ``mfa_enrolment``, then ``banner``, then ``active``)."""

    token: str
    stage: str
    banner: str


class LogonState(BaseModel):
    """Where the current logon stands and what it may do."""

    session_id: int
    user_id: int
    username: str
    stage: str = Field(description="one_time_code, mfa_enrolment, banner or active")
    next_step: str | None = Field(description="what to send next; null once active")
    banner: str = Field(description="the system-use notice to acknowledge (CJIS AC-8)")
    proved_at: datetime | None = Field(description="last proof of password and code")
    privileged_until: datetime | None = Field(
        description="privileged acts are allowed until then; after it, re-authenticate"
    )
    recovery_codes_left: int


class CodeProof(BaseModel):
    """A one-time code from the authenticator, or one of the recovery codes (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    code: Line | None = Field(default=None, pattern=r"^\s*[0-9]{6}\s*$")
    recovery_code: Line | None = Field(default=None, min_length=1, max_length=40)


class Reauthentication(CodeProof):
    """The password again, with a one-time code or a recovery code."""

    password: Line = Field(min_length=1, max_length=1024)


class EnrolmentConfirm(BaseModel):
    """The first code the authenticator shows for the new secret."""

    model_config = ConfigDict(extra="forbid")

    code: Line = Field(pattern=r"^\s*[0-9]{6}\s*$")


class EnrolmentStarted(BaseModel):
    """A new TOTP secret, shown this once: scan the QR code or type the secret."""

    secret: str = Field(description="base32; type it into the authenticator if not scanning")
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code, an SVG document")


class EnrolmentDone(BaseModel):
    """The enrolment is confirmed: ten single-use recovery codes, shown this once."""

    recovery_codes: list[str]
    stage: str


class RoleChange(BaseModel):
    """What a change of roles did: the roles before and after, and the sessions it ended."""

    user: UserRead
    before: list[Role]
    after: list[Role]
    sessions_ended: int


class SessionsEnded(BaseModel):
    """How many logon sessions an act ended."""

    ended: int
