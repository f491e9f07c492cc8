"""Compile an agreement in force, and the site floor, into the read policy of an outside agency."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.access.policy import FieldProjection, Mask, ReadPolicy, last_4, year_only
from openpars.access.visibility import ensure_set
from openpars.agreements.floor import SiteFloor, get_floor
from openpars.agreements.grants import Grant, grant_of, send_grant_reads
from openpars.agreements.models import Agreement, AgreementStatus, AgreementVersion
from openpars.agreements.schemas import AgreementDocument
from openpars.agreements.scope import FieldPolicy, Scope
from openpars.errors import Forbidden
from openpars.identity.principal import Principal
from openpars.prepared import Rows


def _redact(value: Any) -> Any:
    # Ranger MASK: letters become x/X, digits n; shape survives, content does not. Any other
    # alphanumeric character (fractions, superscripts, other scripts) is masked too.
    out = []
    for ch in str(value):
        if ch.isnumeric():
            out.append("n")
        elif ch.isupper():
            out.append("X")
        elif ch.isalnum():
            out.append("x")
        else:
            out.append(ch)
    return "".join(out)


def keyed_hash(key: bytes) -> Mask:
    """The HASH mask of one agreement version: HMAC-SHA256 under the version's secret.

    Equal values still hash equal for the grantee, so records can be linked within the
    version; but without the key nobody can hash candidate SIDs or dates to reverse one (a
    plain SHA-256 of a nine-digit SID falls to enumeration in seconds).
    """

    def mask(value: Any) -> Any:
        return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()

    return mask


def _masks(key: bytes) -> Mapping[FieldPolicy, Mask | None]:
    return {
        FieldPolicy.VISIBLE: None,
        FieldPolicy.REDACT: _redact,
        FieldPolicy.SHOW_LAST_4: last_4,
        FieldPolicy.HASH: keyed_hash(key),
        FieldPolicy.YEAR_ONLY: year_only,
        FieldPolicy.NULLIFY: lambda _value: None,
    }


def _projection(
    fields: Mapping[str, FieldPolicy],
    floor_hidden: frozenset[str],
    clauses: list[str],
    kind: str,
    masks_by_rule: Mapping[FieldPolicy, Mask | None],
) -> FieldProjection:
    """Visible and masked fields; the floor removes what it forbids whatever the agreement says."""
    allowed: set[str] = set()
    masks: dict[str, Mask] = {}
    rules: dict[str, str] = {}
    for name, rule in sorted(fields.items()):
        if rule is FieldPolicy.HIDDEN:
            continue
        if name in floor_hidden:
            clauses.append(f"floor: {kind}.{name} removed")
            continue
        allowed.add(name)
        mask = masks_by_rule[rule]
        if mask is not None:
            masks[name] = mask
            rules[name] = rule.value
            clauses.append(f"{kind}.{name}: {rule.value}")
    # Sub-fields of parts the floor withholds (free text inside a granted part).
    withheld = frozenset(name for name in floor_hidden if "." in name)
    for name in sorted(withheld):
        if name.split(".")[0] in allowed:
            clauses.append(f"floor: {kind}.{name} removed")
    return FieldProjection(allowed=frozenset(allowed), masks=masks, rules=rules, withheld=withheld)


def compile_grant(grant: Grant, floor: SiteFloor) -> ReadPolicy:
    """One agreement version plus the floor, as row filters and field projections."""
    scope: Scope = grant.scope
    clauses = [
        f"agreement {grant.agreement_id} version {grant.version} ({grant.content_hash[:12]})"
    ]
    roles = frozenset(scope.roles) - frozenset(floor.forbidden_roles)
    for removed in sorted(frozenset(scope.roles) & frozenset(floor.forbidden_roles)):
        clauses.append(f"floor: role {removed.value} removed")
    clauses.append("roles: " + ", ".join(sorted(r.value for r in roles)))
    exclude_juveniles = scope.exclude_juveniles or floor.forbid_juveniles
    if exclude_juveniles:
        clauses.append("juvenile involvements excluded (an unknown age counts as juvenile)")
    include_sealed = scope.include_sealed and not floor.forbid_sealed
    clauses.append(
        "sealed and expunged records excluded" if not include_sealed else "sealed included"
    )
    clauses.append("states: " + ", ".join(sorted(s.value for s in scope.arrest_states)))
    grades = ", ".join(sorted(g.value for g in scope.grades))
    clauses.append(f"grades: {grades} (current charges only)")
    floor_fields = frozenset(floor.forbidden_person_fields)
    # The floor's cap binds agreements adopted before it was lowered, too.
    max_results = min(scope.limits.max_results, floor.max_results)
    masks = _masks(grant.mask_key)
    if max_results < scope.limits.max_results:
        clauses.append(f"floor: at most {max_results} results per query")
    return ReadPolicy(
        external=True,
        roles=roles,
        include_sealed=include_sealed,
        exclude_juveniles=exclude_juveniles,
        arrest_states=frozenset(scope.arrest_states),
        grades=frozenset(scope.grades),
        person_fields=_projection(scope.person_fields, floor_fields, clauses, "person", masks),
        arrest_fields=_projection(
            scope.arrest_fields,
            frozenset(floor.forbidden_arrest_fields),
            clauses,
            "arrest",
            masks,
        ),
        exact_identifiers_only=scope.limits.exact_identifiers_only,
        name_search=scope.limits.name_search,
        max_results=max_results,
        rate_per_user=scope.limits.rate_per_user_per_minute,
        rate_per_agency=scope.limits.rate_per_agency_per_minute,
        agreement_id=grant.agreement_id,
        agreement_version=grant.version,
        agreement_hash=grant.content_hash,
        clauses=tuple(clauses),
    )


def grant_in_force(
    session: Session, *, principal: Principal, at: datetime, sent: Rows | None = None
) -> Grant:
    """The agreement version in force for an external caller, or Forbidden: no data at all.

    ``sent``: its reads, already sent (``send_grant_reads``) by a caller batching them.
    """
    cache_key = ("grant", principal.user_id, at)
    cached = session.info.get(cache_key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    reads = sent if sent is not None else send_grant_reads(session, principal, at)
    grant = grant_of(session, principal=principal, sent=reads)
    if grant is None:
        raise Forbidden(
            "no data-sharing agreement is in force for your account at this time; no data can "
            "be returned",
            code="no_agreement_in_force",
        )
    # Cached for this transaction only: no cache outlives a suspension or an expiry.
    session.info[cache_key] = grant
    return grant


def purpose_rules(session: Session, *, principal: Principal, at: datetime) -> dict[str, bool]:
    """Allowed purposes of the caller's agreement, each with whether a case reference is needed."""
    scope = grant_in_force(session, principal=principal, at=at).scope
    return {rule.purpose: rule.case_reference_required for rule in scope.purposes}


def ensure_sets_in_force(session: Session) -> list[int]:
    """Build the visibility set of every agreement version put in force (and not ended), under
    the current floor, where it is missing; the ids of every such set.

    Called when a decision puts a version in force, and by the governance tick (which also
    covers a changed floor: until its set is built, a scope is searched with probes).
    """
    floor = get_floor(session)
    versions = session.execute(
        select(AgreementVersion)
        .join(
            Agreement,
            (Agreement.id == AgreementVersion.agreement_id)
            & (Agreement.active_version == AgreementVersion.version),
        )
        .where(Agreement.status.in_((AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED)))
        .order_by(Agreement.id)
    ).scalars()
    ids: list[int] = []
    for version in versions:
        document = AgreementDocument.model_validate(version.content)
        grant = Grant(
            version.agreement_id,
            version.version,
            version.content_hash,
            document.scope,
            document.effective_at,
            document.expires_at,
            version.mask_key,
        )
        ids.append(ensure_set(session, compile_grant(grant, floor)))
    return ids
