"""The read services: search and fetch persons and arrests, each decided, filtered and audited.

Every read of records (API, web, CLI, feed, export) calls one of these functions. Each one
builds the caller's policy once, runs SQL that carries the policy's row filter (so totals and
pagination count only visible rows), shapes the result through the field projection and
appends one audit entry in the same transaction before anything is returned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.access import repository as repo
from openpars.access import shaping
from openpars.access.criteria import (
    check_arrest_search,
    check_birth_year,
    check_page,
    check_person_search,
)
from openpars.access.enforcement import decide_sending, policy_for
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import (
    ArrestPage,
    ArrestQuery,
    ArrestResult,
    Decision,
    PersonPage,
    PersonQuery,
    PersonResult,
    ReadContext,
    effective_limit,
)
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.service import append_last, append_sending
from openpars.db import utcnow
from openpars.errors import DomainError, Forbidden, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.prepared import plans_by_values


def _audit(
    session: Session,
    *,
    principal: Principal,
    kind: AuditKind,
    action: str,
    policy: ReadPolicy,
    context: ReadContext,
    query: dict[str, Any],
    person_ids: list[int],
    arrest_ids: list[int],
    at: datetime,
) -> None:
    # The read's last statement: on PostgreSQL an external unit's COMMIT travels with it
    # (nothing may run in the unit after this; the page is shaped from what was read).
    event = _event(principal, kind, action, policy, context, query, person_ids, arrest_ids)
    append_last(session, event, at=at)


def _event(
    principal: Principal,
    kind: AuditKind,
    action: str,
    policy: ReadPolicy,
    context: ReadContext,
    query: dict[str, Any],
    person_ids: list[int],
    arrest_ids: list[int],
) -> AuditEvent:
    return AuditEvent(
        kind=kind,
        action=action,
        user_id=principal.user_id,
        username=principal.username,
        agency_id=principal.agency_id,
        source_ip=principal.source_ip,
        params={"query": query, **context.as_params(), "decision": policy.explain()},
        person_ids=person_ids,
        arrest_ids=arrest_ids,
        agreement_id=policy.agreement_id,
        agreement_version=policy.agreement_version,
        # The decision's text, written once per policy: the entry copies it.
        encoded_params={"decision": policy.explained()},
    )


def _query_params(query: PersonQuery | ArrestQuery) -> dict[str, Any]:
    # The criteria given, as dataclasses.asdict would list them (without its deep copies).
    return {
        name: value for name in _FIELDS[type(query)] if (value := getattr(query, name)) is not None
    }


_FIELDS = {kind: tuple(f.name for f in fields(kind)) for kind in (PersonQuery, ArrestQuery)}


def search_persons(
    session: Session,
    *,
    principal: Principal,
    query: PersonQuery,
    context: ReadContext,
    now: datetime | None = None,
) -> PersonPage:
    """Persons matching the criteria, as the caller's policy allows."""
    at = now or utcnow()
    check_person_query(query)

    def first_pages(guess: ReadPolicy) -> repo.SentPages | None:
        # The search's first statements, sent with the decision (PostgreSQL: one round trip)
        # under the policy this caller had last time; used only if the decision agrees.
        try:
            check_person_search(guess, query)
        except DomainError:
            return None
        limit = effective_limit(query.limit, guess.max_results)
        return repo.send_first_pages(session, guess, query, limit=limit)

    # A name's pages run on their generic plans (``prepared.generic_plans``): the decision's
    # statement turns them on where pages are sent ahead, so no statement of its own does.
    policy, sent = decide_sending(
        session,
        principal=principal,
        context=context,
        at=at,
        sends=first_pages,
        generic_plans=query.name is not None,
    )
    check_person_search(policy, query)
    limit = effective_limit(query.limit, policy.max_results)
    found = repo.search_persons(session, policy, query, limit=limit, sent=sent)
    ids = [row["id"] for row in found.rows]
    # The audit entry and the page's aliases go to the database together (one round trip on
    # PostgreSQL): the entry names the persons found, whatever their aliases.
    event = _event(
        principal, AuditKind.SEARCH, "person.search", policy, context, _query_params(query), ids, []
    )
    shown = policy.person_fields.shows("aliases") and found.aliases is None
    _, aliases = append_sending(
        session, event, lambda: repo.send_aliases(session, ids) if shown else None, at=at
    )
    # A unit that goes on after its entry (one not committed with it) plans what follows for
    # its values again; a committed one ended the setting with its transaction.
    plans_by_values(session)
    if found.aliases is not None:
        # The page's statement carried them (an external first page sent ahead, PostgreSQL).
        return _person_page(found, found.aliases, policy, query, limit)
    return _person_page(found, None if aliases is None else aliases(), policy, query, limit)


def check_person_query(query: PersonQuery) -> None:
    """What a person search must give whoever asks, before any policy is decided."""
    if (
        query.sid is None
        and query.name is None
        and query.fbi_number is None
        and query.birth_date is None
        and query.birth_year is None
    ):
        raise InvalidInput(
            "give at least one of name, birth_date, birth_year, sid, fbi_number", field="query"
        )
    check_page(offset=query.offset, limit=query.limit)
    check_birth_year(query.birth_year)


def check_arrest_query(query: ArrestQuery) -> None:
    """What an arrest search must give whoever asks, before any policy is decided."""
    identifiers = any((query.otn, query.incident_number, query.docket_number))
    if not identifiers and not any(
        (query.arrested_from, query.arrested_to, query.statute, query.state)
    ):
        raise InvalidInput(
            "give at least one of otn, incident_number, docket_number, arrested_from, "
            "arrested_to, statute, state",
            field="query",
        )
    check_page(offset=query.offset, limit=query.limit)


def person_page(session: Session, *, policy: ReadPolicy, query: PersonQuery) -> PersonPage:
    """The page a person search returns under a policy already decided (no audit here); the
    criteria are checked against the policy first."""
    check_person_search(policy, query)
    limit = effective_limit(query.limit, policy.max_results)
    found = repo.search_persons(session, policy, query, limit=limit)
    aliases = found.aliases
    if aliases is None and policy.person_fields.shows("aliases"):
        aliases = repo.aliases_of(session, [row["id"] for row in found.rows])
    return _person_page(found, aliases, policy, query, limit)


def _person_page(
    found: repo.Found,
    aliases: dict[int, list[dict[str, Any]]] | None,
    policy: ReadPolicy,
    query: PersonQuery,
    limit: int,
) -> PersonPage:
    return PersonPage(
        items=shaping.person_rows(found.rows, aliases, policy),
        total=found.total,
        total_is_exact=found.total_is_exact,
        has_more=found.has_more,
        offset=query.offset,
        limit=limit,
        decision=Decision(**policy.explain()),
    )


def search_arrests(
    session: Session,
    *,
    principal: Principal,
    query: ArrestQuery,
    context: ReadContext,
    now: datetime | None = None,
) -> ArrestPage:
    """Arrests matching the criteria, as the caller's policy allows."""
    at = now or utcnow()
    check_arrest_query(query)
    policy = policy_for(session, principal=principal, context=context, at=at)
    check_arrest_search(policy, query)
    limit = effective_limit(query.limit, policy.max_results)
    found = repo.search_arrests(session, policy, query, limit=limit)
    _audit(
        session,
        principal=principal,
        kind=AuditKind.SEARCH,
        action="arrest.search",
        policy=policy,
        context=context,
        query=_query_params(query),
        person_ids=[],
        arrest_ids=[row["id"] for row in found.rows],
        at=at,
    )
    return _arrest_page(found, policy, query, limit)


def arrest_page(session: Session, *, policy: ReadPolicy, query: ArrestQuery) -> ArrestPage:
    """The page an arrest search returns under a policy already decided (no audit here); the
    criteria are checked against the policy first."""
    check_arrest_search(policy, query)
    limit = effective_limit(query.limit, policy.max_results)
    return _arrest_page(
        repo.search_arrests(session, policy, query, limit=limit), policy, query, limit
    )


def page_digest(page: ArrestPage) -> str:
    """A digest of what an arrest page shows: its rows as shaped for the caller, and whether
    more follow. Equal digests, equal pages (the decision's explanation aside)."""
    shown = {"items": [i.model_dump(mode="json") for i in page.items], "more": page.has_more}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def arrest_page_digest(
    session: Session,
    *,
    principal: Principal,
    query: ArrestQuery,
    context: ReadContext,
    now: datetime | None = None,
) -> str:
    """The ``page_digest`` of the page ``search_arrests`` would show this caller now; not
    audited, and so for internal callers only (Forbidden for an external one, whose every read
    counts against its agreement).

    It discloses no record: a page refreshing itself (the charging queue) sends the digest of
    the page it shows and reloads it, through the audited ``search_arrests``, only when the
    digests differ. The server never hands out a digest but with the audited page it is the
    digest of, so the caller learns no more than that the page it was shown has changed, which
    the audited reload shows it anyway; computed under the caller's own policy and query, a
    change to a record the caller may not see leaves it as it was.
    """
    if principal.is_external:
        raise Forbidden(
            "an external agency's every read is audited against its agreement: search instead",
            field="query",
        )
    check_arrest_query(query)
    policy = policy_for(session, principal=principal, context=context, at=now or utcnow())
    return page_digest(arrest_page(session, policy=policy, query=query))


def _arrest_page(
    found: repo.Found, policy: ReadPolicy, query: ArrestQuery, limit: int
) -> ArrestPage:
    return ArrestPage(
        items=[shaping.arrest_row(r, policy) for r in found.rows],
        total=found.total,
        total_is_exact=found.total_is_exact,
        has_more=found.has_more,
        offset=query.offset,
        limit=limit,
        decision=Decision(**policy.explain()),
    )


def get_person(
    session: Session,
    *,
    principal: Principal,
    person_id: int,
    context: ReadContext,
    now: datetime | None = None,
) -> PersonResult:
    """One person with their visible involvements; NotFound if missing or invisible alike."""
    at = now or utcnow()
    policy = policy_for(session, principal=principal, context=context, at=at)
    person = repo.visible_person(session, policy, person_id)
    if person is None:
        # Missing and invisible are the same answer; the refusal handler audits the attempt.
        raise NotFound(f"no person with id {person_id}", field="person_id")
    involvements = repo.visible_involvements_of_person(session, policy, person_id)
    _audit(
        session,
        principal=principal,
        kind=AuditKind.READ,
        action="person.get",
        policy=policy,
        context=context,
        query={"person_id": person_id},
        person_ids=[person.id],
        arrest_ids=[i.arrest_id for i in involvements],
        at=at,
    )
    return PersonResult(
        person=shaping.person_detail(person, involvements, policy),
        decision=Decision(**policy.explain()),
    )


def get_arrest(
    session: Session,
    *,
    principal: Principal,
    arrest_id: int,
    context: ReadContext,
    now: datetime | None = None,
) -> ArrestResult:
    """One arrest with everything visible in it; NotFound if missing or invisible alike."""
    at = now or utcnow()
    policy = policy_for(session, principal=principal, context=context, at=at)
    arrest = repo.visible_arrest_alone(session, policy, arrest_id)
    if arrest is None:
        raise NotFound(f"no arrest with id {arrest_id}", field="arrest_id")
    # Only the parts the policy shows are read, all in one round trip (PostgreSQL): a part
    # hidden from the caller is never read, so neither its size nor a fault in it shows.
    parts = repo.send_arrest_parts(session, arrest_id, shaping.shown_parts(policy))()
    involvements = repo.visible_involvements_of_arrest(session, policy, arrest_id)
    _audit(
        session,
        principal=principal,
        kind=AuditKind.READ,
        action="arrest.get",
        policy=policy,
        context=context,
        query={"arrest_id": arrest_id},
        person_ids=[i.person_id for i in involvements],
        arrest_ids=[arrest.id],
        at=at,
    )
    return ArrestResult(
        arrest=shaping.arrest_read(arrest, involvements, policy, parts),
        decision=Decision(**policy.explain()),
    )
