"""Decide, once per request, what a caller may read: the policy and the request checks."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TypeVar, overload

from sqlalchemy.orm import Session

from openpars.access.decision import (
    DecisionReads,
    Limits,
    last_limits,
    remember_limits,
    send_decision_reads,
    windows,
)
from openpars.access.external import compile_grant, grant_in_force, purpose_rules
from openpars.access.policy import ReadPolicy, internal_policy
from openpars.access.rate import USER, claim_if_free, give_back, send_claims, settle
from openpars.access.rls import require_external_session
from openpars.access.schemas import ReadContext
from openpars.agreements.floor import floor_of_newest
from openpars.agreements.grants import Grant, grantee_of, send_grant_reads
from openpars.agreements.repository import floor_of
from openpars.errors import Forbidden, InvalidInput, TooManyRequests
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission
from openpars.prepared import pipeline
from openpars.records.validation import name_key

WILDCARDS = re.compile(r"[*%_?]")


def policy_for(
    session: Session, *, principal: Principal, context: ReadContext, at: datetime
) -> ReadPolicy:
    """The read policy of this caller at this instant, or a refusal saying why.

    An external caller's decision is one round trip on PostgreSQL: the floor in force and the
    places taken in the rate windows (``access.decision``), the share lock on the caller's
    agreements and the agreement in force are sent together, then read.
    """
    return decide_sending(session, principal=principal, context=context, at=at)[0]


def decide_sending(
    session: Session,
    *,
    principal: Principal,
    context: ReadContext,
    at: datetime,
    sends: Callable[[ReadPolicy], R | None] | None = None,
    generic_plans: bool = False,
) -> tuple[ReadPolicy, R | None]:
    """``policy_for``, with the read's first statements sent in the decision's round trip.

    On PostgreSQL, if this caller had a policy at its previous decision (in this process),
    ``sends`` is called with it inside the decision's pipeline, after the share lock and the
    in-force lookup, to send the statements the read would start with under that policy. What
    it returns is handed back only if the decision arrives at that very policy (the same
    compiled object: same agreement version, scope, mask key and floor) and refuses nothing;
    otherwise it is dropped, unread, and the read runs its statements itself. Nothing here is
    decided from the guess: every check runs on the policy read in this transaction.

    ``generic_plans``: where statements are sent ahead, the decision's statement also turns
    generic plans on for the rest of the transaction (``access.decision``), for a read whose
    statements run on them (an external name search): the setting travels in a statement sent
    anyway.
    """
    if not principal.is_external:
        principal.require(Permission.RECORD_READ)
        return internal_policy(sealed_access=principal.can(Permission.SEALED_READ)), None
    principal.require(Permission.EXTERNAL_QUERY)
    require_external_session(session)
    guess = _LAST_POLICY.get((principal.agency_id, principal.user_id))
    if sends is None or guess is None or session.get_bind().dialect.name != "postgresql":
        ahead = None
        reads, grant = _decision(session, principal=principal, at=at)
    else:
        early = partial(sends, guess)
        reads, grant, ahead = _decision(
            session, principal=principal, at=at, ahead=early, generic_plans=generic_plans
        )
    policy = _compiled(session, grant, reads.floor_hash)
    check_purpose(session, principal=principal, context=context, at=at)
    check_rate(session, reads, at=at)
    if len(_LAST_POLICY) >= _POLICIES_MAX:
        _LAST_POLICY.clear()
    _LAST_POLICY[(principal.agency_id, principal.user_id)] = policy
    return policy, (ahead if policy is guess else None)


# Compiled policies by everything compile_grant reads: the version (its content hash names its
# scope), its mask key and the floor's content hash. Whether the version is in force is decided
# on every request, at its instant, from rows as of its transaction (agreements.in_force): a
# suspended or expired agreement has no grant to look up.
_POLICIES: dict[tuple[int, int, str, bytes, str | None], ReadPolicy] = {}
_POLICIES_MAX = 512
# The policy of each (agency, user) at its last decision: a guess for the next one only.
_LAST_POLICY: dict[tuple[int | None, int | None], ReadPolicy] = {}
R = TypeVar("R")


def _compiled(session: Session, grant: Grant, floor_hash: str | None) -> ReadPolicy:
    key = (grant.agreement_id, grant.version, grant.content_hash, grant.mask_key, floor_hash)
    policy = _POLICIES.get(key)
    if policy is None:
        policy = compile_grant(grant, floor_of_newest(session, floor_hash))
        if len(_POLICIES) >= _POLICIES_MAX:
            _POLICIES.clear()
        _POLICIES[key] = policy
    return policy


@overload
def _decision(
    session: Session, *, principal: Principal, at: datetime
) -> tuple[DecisionReads, Grant]: ...


@overload
def _decision(
    session: Session,
    *,
    principal: Principal,
    at: datetime,
    ahead: Callable[[], R | None],
    generic_plans: bool = False,
) -> tuple[DecisionReads, Grant, R | None]: ...


def _decision(
    session: Session,
    *,
    principal: Principal,
    at: datetime,
    ahead: Callable[[], R | None] | None = None,
    generic_plans: bool = False,
) -> tuple[DecisionReads, Grant] | tuple[DecisionReads, Grant, R | None]:
    """The decision reads and the grant in force, sent together (with ``ahead``'s statements
    after them); the rate windows claimed again if they were claimed for limits other than
    the agreement's."""
    agency = principal.agency_id
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: no round trip to save, so nothing is sent ahead. The in-force lookup carries
        # the floor's hash; the places are taken once the agreement's limits are known (no
        # guess, so nothing is ever given back). The share lock is not needed: the transaction
        # began IMMEDIATE and holds the only write lock.
        sent_grant = send_grant_reads(session, principal, at, with_floor=True)
        grant = grant_in_force(session, principal=principal, at=at, sent=sent_grant)
        limits = _limits_kept(grant, agency)
        assert sent_grant is not None  # a grant was found, so its lookup was sent (and read)
        claims = send_claims(session, windows(principal.user_id, agency, limits), at)()
        reads = DecisionReads(floor_of(sent_grant), tuple(claims))
        return (reads, grant) if ahead is None else (reads, grant, ahead())
    # On PostgreSQL the places go out with the limits of the agency's last decision (one
    # round trip).
    guess = last_limits(agency)
    with pipeline(session):
        # The share lock rides on the decision's statement where there is one (PostgreSQL,
        # limits known): the in-force lookup after it still runs once the lock is held.
        sent = send_decision_reads(
            session,
            user_id=principal.user_id,
            agency_id=agency,
            at=at,
            limits=guess,
            lock_grantee=grantee_of(principal),
            generic_plans=generic_plans and ahead is not None,
        )
        # The lookup carries the newest floor's hash (from the process's copy while the
        # governance generation holds: no statement of its own).
        sent_grant = send_grant_reads(
            session,
            principal,
            at,
            locked=sent.locked,
            with_floor=True,
            generation=sent.generation,
        )
        early = ahead() if ahead is not None else None
    grant = grant_in_force(session, principal=principal, at=at, sent=sent_grant)
    limits = _limits_kept(grant, agency)
    assert sent_grant is not None  # a grant was found, so its lookup was sent (and read)
    reads = sent.result(partial(floor_of, sent_grant))
    if limits != sent.limits:
        give_back(session, reads.claims)
        claims = send_claims(session, windows(principal.user_id, agency, limits), at)()
        reads = replace(reads, claims=tuple(claims))
    if ahead is None:
        return reads, grant
    return reads, grant, early


def _limits_kept(grant: Grant, agency: int | None) -> Limits:
    """The agreement's rate limits, kept as the agency's last (the next request's guess on
    PostgreSQL, and what ``count_refused`` counts a refusal under on both engines)."""
    limits = (
        grant.scope.limits.rate_per_user_per_minute,
        grant.scope.limits.rate_per_agency_per_minute,
    )
    if limits != last_limits(agency):
        remember_limits(agency, limits)
    return limits


def check_purpose(
    session: Session, *, principal: Principal, context: ReadContext, at: datetime
) -> None:
    """External reads state an allowed purpose, and a case reference where one is required."""
    if not context.purpose:
        raise InvalidInput(
            "external queries must state a purpose (query parameter 'purpose')", field="purpose"
        )
    check_purpose_rules(purpose_rules(session, principal=principal, at=at), context)


def check_purpose_rules(rules: Mapping[str, bool], context: ReadContext) -> None:
    """The purpose check against an agreement's purposes (slug -> case reference required):
    the rule ``check_purpose`` applies to the version in force, and the what-if replay
    (``access.replay``) to a proposed version."""
    if not context.purpose:
        raise InvalidInput(
            "external queries must state a purpose (query parameter 'purpose')", field="purpose"
        )
    rule = rules.get(context.purpose)
    if rule is None:
        allowed = ", ".join(sorted(rules)) or "none"
        raise Forbidden(
            f"purpose '{context.purpose}' is not allowed by your agreement; allowed: {allowed}",
            code="purpose_not_allowed",
            field="purpose",
        )
    if rule and not context.case_number:
        raise InvalidInput(
            f"purpose '{context.purpose}' requires a case reference (query parameter "
            "'case_number')",
            field="case_number",
        )


def check_rate(session: Session, reads: DecisionReads, *, at: datetime) -> None:
    """Per-user and per-agency rate limits: a place in each of the caller's rate windows
    (``access.rate``), taken in the decision's round trip; a full window refuses, saying when
    its oldest place frees."""
    retries = settle(session, reads.claims, at)
    for claim, retry in zip(reads.claims, retries, strict=True):
        if retry is not None:
            who = "your account" if claim.window.kind == USER else "your agency"
            raise TooManyRequests(
                f"rate limit reached: {who} may make {claim.window.limit} queries per minute "
                f"under the agreement; retry in {retry:.1f} s",
                retry_after=retry,
            )


def count_refused(session: Session, principal: Principal, *, at: datetime) -> None:
    """Count a refused external attempt in the caller's rate windows while they have room,
    as an admitted one counts (the refused request's own place went with its rollback):
    probing by refusals (a missing person, a refused purpose) is limited like reading. The
    limits are those the agency's agreement had at this process's last decision; before any,
    nothing is counted (there was no decision to refuse yet)."""
    if not principal.is_external:
        return
    found = windows(principal.user_id, principal.agency_id, last_limits(principal.agency_id))
    claim_if_free(session, found, at)


def check_query_shape(
    policy: ReadPolicy, *, name: str | None, identifiers: bool, limit: int | None
) -> None:
    """Refuse wildcards, name searches and result sizes the policy does not allow."""
    if name is not None and WILDCARDS.search(name):
        raise InvalidInput(
            "wildcards (* % _ ?) are not allowed in a name; a name matches by prefix",
            field="name",
        )
    if name is not None and not name_key(name):
        # Punctuation, emoji, zero-width and combining marks all normalise away: such a
        # "name" matches nothing and must not reach the prefix range (item 10 of issue 10).
        raise InvalidInput(
            f"name {name!r} has no letters or digits once punctuation, symbols and accents are "
            "removed; search by at least 2 letters of the name",
            field="name",
            details={"rule": "name_has_no_letters"},
        )
    if name is not None and len(name.strip()) < 2:
        raise InvalidInput("a name search needs at least 2 characters", field="name")
    if (
        policy.external
        and name is not None
        and (policy.exact_identifiers_only or not policy.name_search)
    ):
        raise Forbidden(
            "your agreement allows exact identifiers only (SID, FBI number, OTN, docket or "
            "incident number); name search is not allowed",
            code="query_shape_not_allowed",
            field="name",
        )
    if policy.external and policy.exact_identifiers_only and not identifiers:
        raise Forbidden(
            "your agreement allows exact identifiers only (SID, FBI number, OTN, docket or "
            "incident number)",
            code="query_shape_not_allowed",
        )
    if policy.max_results is not None and limit is not None and limit > policy.max_results:
        raise InvalidInput(
            f"limit {limit} exceeds the agreement's maximum of {policy.max_results} results per "
            "query",
            field="limit",
        )
