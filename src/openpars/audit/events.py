"""Audit event kinds and the event every access hands to the one audit path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpars.identity.principal import Principal


class AuditKind(StrEnum):
    """What happened; every access, write, refusal and administrative act has a kind."""

    READ = "read"
    SEARCH = "search"
    WRITE = "write"
    REFUSED = "refused"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    TOKEN = "token"  # noqa: S105 - an event kind, not a secret
    ACCOUNT = "account"
    AGREEMENT = "agreement"
    PROPOSAL = "proposal"
    VOTE = "vote"
    EXPORT = "export"
    FEED = "feed"
    AUDIT_READ = "audit_read"
    CONFIG = "config"
    KEY = "key"
    # Oversight reviewers' reads and acts (issue 13): canaries, flags, cases.
    OVERSIGHT = "oversight"


class Outcome(StrEnum):
    """How the access ended."""

    OK = "ok"
    REFUSED = "refused"


@dataclass(slots=True)
class AuditEvent:
    """One audited act: who, what, where from, the parameters and what was returned."""

    kind: AuditKind
    action: str
    outcome: Outcome = Outcome.OK
    user_id: int | None = None
    username: str | None = None
    agency_id: int | None = None
    source_ip: str | None = None
    # Query parameters, purpose, case reference, on-behalf-of, the decision and its clauses.
    params: dict[str, Any] = field(default_factory=dict)
    # Ids of what the caller received (persons, arrests) or what was written.
    person_ids: list[int] = field(default_factory=list)
    arrest_ids: list[int] = field(default_factory=list)
    agreement_id: int | None = None
    agreement_version: int | None = None
    error_code: str | None = None
    # The canonical JSON text of some of params' values, by key, written once by their owner
    # (a read's decision: ``ReadPolicy.explained``): the entry's text copies it instead of
    # encoding the value again (``audit.canonical``). Each text must be the canonical JSON of
    # the value under its key in params; a key not in params is ignored.
    encoded_params: Mapping[str, str] | None = None


def event_by(actor: Principal, *, kind: AuditKind, action: str, **fields: Any) -> AuditEvent:
    """An audit event of an act by ``actor``: who, their agency and address filled in."""
    return AuditEvent(
        kind=kind,
        action=action,
        user_id=actor.user_id,
        username=actor.username,
        agency_id=actor.agency_id,
        source_ip=actor.source_ip,
        **fields,
    )
