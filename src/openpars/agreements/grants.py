"""The grant the enforcement point asks for: which agreement version is in force for a caller."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from openpars.agreements import in_force
from openpars.agreements import repository as repo
from openpars.agreements.in_force import Generation
from openpars.agreements.schemas import (
    AgreementDocument,
    sha256_hex,
)
from openpars.agreements.scope import Scope
from openpars.identity.principal import Principal
from openpars.prepared import Rows

log = logging.getLogger("openpars.agreements")

# ---- the grant the enforcement point asks for ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """The agreement version in force for a caller: what the enforcement point compiles."""

    agreement_id: int
    version: int
    content_hash: str
    scope: Scope
    effective_at: datetime
    expires_at: datetime
    # The version's HASH-mask secret (see AgreementVersion.mask_key); never shown to anyone.
    mask_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Admission:
    scope: Scope
    unit_ids: frozenset[int]
    user_ids: frozenset[int]
    all_units: bool


# Parsed versions by content hash. Versions are immutable, so an entry can never be stale;
# whether a version is in force is decided at each request's instant (agreements.in_force).
_PARSED: dict[str, _Admission | None] = {}
_PARSED_MAX = 512


def _admission(session: Session, row: repo.InForce) -> _Admission | None:
    cached = _PARSED.get(row.content_hash, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    content = repo.version_content(session, row.agreement_id, row.version) or {}
    parsed: _Admission | None = None
    if sha256_hex(content) != row.content_hash:
        log.error(
            "agreement %s version %s: content does not match its hash; no grant",
            row.agreement_id,
            row.version,
        )
    else:
        doc = AgreementDocument.model_validate(content)
        parsed = _Admission(
            doc.scope,
            frozenset(doc.grantee_unit_ids),
            frozenset(doc.grantee_user_ids),
            doc.all_units,
        )
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[row.content_hash] = parsed
    return parsed


def grantee_of(principal: Principal) -> int | None:
    """The agency whose agreements an external caller reads under (None: none can apply)."""
    if not principal.is_external or not principal.agency_path:
        return None
    return principal.agency_path[-1]


def grant_for(session: Session, *, principal: Principal, at: datetime) -> Grant | None:
    """The agreement in force for an external caller at ``at``, or None: no data at all."""
    return grant_of(session, principal=principal, sent=send_grant_reads(session, principal, at))


def send_grant_reads(
    session: Session,
    principal: Principal,
    at: datetime,
    *,
    locked: bool = False,
    with_floor: bool = False,
    generation: Callable[[], Generation | None] | None = None,
) -> Rows | None:
    """Send the share lock on the caller's agreements and the in-force lookup after it (None:
    not an external caller, no agreement can apply). Inside a pipeline neither waits.

    ``locked``: a statement sent before this one already took the lock (``grantee_of``'s
    agreements; ``access.decision``), so only the lookup is sent. ``with_floor``: the lookup
    carries the newest floor's hash too (``repository.floor_of``). ``generation``: the
    governance generation, read by the statement that took the lock (``in_force.send_in_force``).
    """
    if not principal.is_external or not principal.agency_path:
        return None
    if not locked:
        repo.share_lock_agreements_of(session, principal.agency_path[-1])
    # The lookup's rows as this process read them under the governance generation, if it has
    # not moved (one statement; agreements.in_force).
    return in_force.send_in_force(
        session,
        grantee_agency_id=principal.agency_path[-1],
        unit_ids=principal.agency_path,
        user_id=principal.user_id,
        at=at,
        with_floor=with_floor,
        generation=generation,
    )


def grant_of(session: Session, *, principal: Principal, sent: Rows | None) -> Grant | None:
    """The grant of sent in-force reads, if the version in force admits the caller."""
    row = None if sent is None else repo.in_force_of(sent)
    if row is None:
        return None
    admission = _admission(session, row)
    if admission is None:
        return None
    admitted = (
        admission.all_units
        or principal.agency_path[0] in admission.unit_ids
        or (principal.user_id is not None and principal.user_id in admission.user_ids)
    )
    if not admitted:
        return None
    return Grant(
        agreement_id=row.agreement_id,
        version=row.version,
        content_hash=row.content_hash,
        scope=admission.scope,
        effective_at=row.in_force_from,
        expires_at=row.in_force_until,
        mask_key=row.mask_key,
    )
