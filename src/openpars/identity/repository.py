"""All SQL of the identity feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, cast, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from openpars.identity.models import Agency, ApiToken, LogonSession, User


def get_agency(session: Session, agency_id: int) -> Agency | None:
    """One agency by id."""
    return session.get(Agency, agency_id)


def get_agency_by_name(session: Session, name: str) -> Agency | None:
    """One agency by its unique name."""
    return session.scalars(select(Agency).where(Agency.name == name)).one_or_none()


def get_agency_by_ori(session: Session, ori: str) -> Agency | None:
    """One agency by its ORI."""
    return session.scalars(select(Agency).where(Agency.ori == ori)).one_or_none()


def unit_oris(session: Session, agency_id: int) -> frozenset[str]:
    """The ORIs of an agency and of every sub-unit below it, however deep, in one query."""
    # UNION (not UNION ALL) ends the recursion even if parent links were ever to form a cycle.
    units = select(Agency.id).where(Agency.id == agency_id).cte("units", recursive=True)
    units = units.union(select(Agency.id).where(Agency.parent_id == units.c.id))
    stmt = select(Agency.ori).where(Agency.id.in_(select(units.c.id)), Agency.ori.is_not(None))
    return frozenset(ori for ori in session.scalars(stmt) if ori is not None)


def list_agencies(session: Session, *, offset: int, limit: int) -> Sequence[Agency]:
    """Agencies ordered by id."""
    return session.scalars(select(Agency).order_by(Agency.id).offset(offset).limit(limit)).all()


def count_agencies(session: Session) -> int:
    """How many agencies and sub-units are registered."""
    return int(session.scalar(select(func.count()).select_from(Agency)) or 0)


def get_user(session: Session, user_id: int) -> User | None:
    """One user by id."""
    return session.get(User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    """One user by username."""
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def logon_session_by_secret_hash(session: Session, secret_hash: str) -> LogonSession | None:
    """The logon session whose secret hashes to ``secret_hash`` (``logon.hash_secret``), ended
    or not: the one lookup of the session a request came with."""
    return session.scalars(
        select(LogonSession).where(LogonSession.secret_hash == secret_hash)
    ).one_or_none()


def list_users(
    session: Session, *, agency_id: int | None, offset: int, limit: int
) -> Sequence[User]:
    """Users ordered by id, optionally of one agency."""
    query = select(User).order_by(User.id)
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return session.scalars(query.offset(offset).limit(limit)).all()


def get_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The token whose secret hashes to ``token_hash``."""
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).one_or_none()


def get_token(session: Session, token_id: int) -> ApiToken | None:
    """One token by id."""
    return session.get(ApiToken, token_id)


def list_tokens(session: Session, *, user_id: int) -> Sequence[ApiToken]:
    """A user's tokens, newest first."""
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    ).all()


def list_logon_sessions(
    session: Session, *, user_id: int, offset: int, limit: int
) -> Sequence[LogonSession]:
    """A user's logon sessions, newest first."""
    query = select(LogonSession).where(LogonSession.user_id == user_id)
    return session.scalars(query.order_by(LogonSession.id.desc()).offset(offset).limit(limit)).all()


def count_logon_sessions(session: Session, *, user_id: int) -> int:
    """How many logon sessions a user has had."""
    query = select(func.count()).where(LogonSession.user_id == user_id)
    return int(session.scalar(query.select_from(LogonSession)) or 0)


def names_by_id(
    session: Session,
    *,
    user_ids: Sequence[int],
    agency_ids: Sequence[int],
    oris: Sequence[str],
) -> list[tuple[str, str, str, str | None]]:
    """(kind, key, name, extra) rows naming these users ("user", id, display name, username)
    and agencies by id or ORI ("agency", id, name, ORI), in one statement (none when there is
    nothing to name)."""
    parts: list[Any] = []
    if user_ids:
        parts.append(
            select(
                literal("user").label("kind"),
                cast(User.id, String).label("key"),
                User.display_name.label("name"),
                User.username.label("extra"),
            ).where(User.id.in_(user_ids))
        )
    if agency_ids or oris:
        parts.append(
            select(
                literal("agency").label("kind"),
                cast(Agency.id, String).label("key"),
                Agency.name.label("name"),
                Agency.ori.label("extra"),
            ).where(or_(Agency.id.in_(agency_ids), Agency.ori.in_(oris)))
        )
    if not parts:
        return []
    query: Any = parts[0] if len(parts) == 1 else union_all(parts[0], *parts[1:])
    return [(str(k), str(key), str(n), e) for k, key, n, e in session.execute(query)]
