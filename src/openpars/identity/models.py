"""Tables of agencies, users, role grants and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openpars.db import Base, UTCDateTime, str_enum, utcnow
from openpars.identity.roles import AgencyKind, Role


class Agency(Base):
    """An agency (police, DA, court, city, defender, external) or a named sub-unit of one."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    ori: Mapped[str | None] = mapped_column(String(9), unique=True)
    kind: Mapped[AgencyKind] = mapped_column(str_enum(AgencyKind, 20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A person or machine account belonging to exactly one agency (or sub-unit)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optional, for oversight only: a user looking up their own surname or address is flagged.
    family_name: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    # Argon2id PHC string (identity/passwords.py); null: the account cannot log on with a password.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by an administrator's reset: the password must be changed at the next logon.
    # Server defaults: rows written outside the ORM (bulk loads, older rows) are complete too.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Failed logons (CJIS AC-7): counted from the first failure of a 15-minute window; at the
    # limit the account is locked until an administrator releases it.
    failed_logons: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    failed_logons_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_logon_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When an administrator last enabled the account: the 90-day dormancy clock restarts then.
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Multi-factor authentication (identity/mfa.py): the TOTP secret, encrypted with AES-GCM
    # under the site's MFA key; pending until the first code confirms the enrolment.
    mfa_secret: Mapped[str | None] = mapped_column(String(200))
    mfa_pending_secret: Mapped[str | None] = mapped_column(String(200))
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last TOTP time step accepted: a code of that step or an earlier one is refused, so an
    # observed code cannot be replayed within its window.
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)

    agency: Mapped[Agency] = relationship(lazy="joined")
    role_grants: Mapped[list[UserRole]] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )

    @property
    def roles(self) -> frozenset[Role]:
        """The roles granted to this user."""
        return frozenset(grant.role for grant in self.role_grants)


class UserRole(Base):
    """One role granted to one user."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 30))


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the secret is shown once at issue."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class LogonSession(Base):
    """An interactive logon: only the SHA-256 of its secret is stored; revocable at once."""

    __tablename__ = "logon_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Absolute end: re-authentication is required after this (CJIS IA-11, 12 hours).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(30))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # The logon's steps after the password (docs/accounts.md): the one-time code (or enrolment)
    # and the system-use banner. Until both are done the session can do nothing else.
    mfa_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    banner_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last time password and code were proved in this session: privileged acts need it recent.
    proved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(Base):
    """A single-use MFA recovery code: only its SHA-256 is stored, the code is shown once."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
