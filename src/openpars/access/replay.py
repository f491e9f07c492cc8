"""Run a recorded external read again under a given agreement version: what it would disclose.

The what-if replay (``oversight.whatif``) asks, for a read an outside agency made, what the
same request would have received under another version of its agreement. It must answer with
the rules that decide real reads, not a copy of them, so this module only strings together the
enforcement point's own pieces: the purpose check (``enforcement.check_purpose_rules``), the
payload and policy checks of each search (``service.check_*_query``, ``criteria``), the SQL
with the policy's row filter (``repository``) and the field projection (``shaping``,
``ReadPolicy.person_fields``/``arrest_fields``).

Nothing here writes an audit entry or returns record data: the result names which persons and
arrests would have been returned and which fields (with their masks) would have been shown.
What is not replayed: the rate limits (they depend on the traffic of the minute, not on the
version) and the agreement's admission of the account (the read was made, so it was admitted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.access import repository as repo
from openpars.access import service
from openpars.access.enforcement import check_purpose_rules
from openpars.access.policy import FieldProjection, ReadPolicy
from openpars.access.schemas import ArrestQuery, PersonQuery, ReadContext
from openpars.access.shaping import ARREST_PARTS, ARREST_SCALARS, PERSON_SCALARS
from openpars.errors import DomainError, InvalidInput, NotFound
from openpars.records.enums import ArrestState

# The external reads a replay knows how to run again (the actions the read service audits).
REPLAYABLE = ("person.search", "person.get", "arrest.search", "arrest.get")
_PERSON_FIELDS = (*PERSON_SCALARS, "aliases")


@dataclass(frozen=True, slots=True)
class RecordedRead:
    """One external read as its audit entry recorded it."""

    action: str
    # params.query of the entry: the criteria and page given, or the id fetched.
    query: Mapping[str, Any]
    context: ReadContext


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What a read would have disclosed under one policy (nothing if refused)."""

    refused: bool
    code: str | None = None
    field: str | None = None
    message: str | None = None
    person_ids: frozenset[int] = frozenset()
    arrest_ids: frozenset[int] = frozenset()
    # "person.sid" -> "visible", "person.phone" -> "redact", "arrest.charges" -> "visible" ...:
    # every field the answer would have carried, with its mask (only when something was found).
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)


def recorded_read(content: Mapping[str, Any]) -> RecordedRead:
    """The read an entry's canonical content describes."""
    params = content.get("params") or {}
    return RecordedRead(
        action=str(content.get("action")),
        query=params.get("query") or {},
        context=ReadContext(
            purpose=params.get("purpose"),
            case_number=params.get("case_number"),
            on_behalf_of=params.get("on_behalf_of"),
        ),
    )


def replay(
    session: Session, *, policy: ReadPolicy, purposes: Mapping[str, bool], read: RecordedRead
) -> Disclosure:
    """The read run again under ``policy`` (an agreement version and the floor, compiled by
    ``external.compile_grant``) and that version's purposes (slug -> case reference required).

    A refusal is reported, not raised: its code, field and message are the ones the caller
    would have received.
    """
    try:
        check_purpose_rules(purposes, read.context)
        return _run(session, policy, read)
    except DomainError as exc:
        return Disclosure(refused=True, code=exc.code, field=exc.field, message=exc.message)


def _run(session: Session, policy: ReadPolicy, read: RecordedRead) -> Disclosure:
    q = read.query
    if read.action == "person.search":
        query = _person_query(q)
        service.check_person_query(query)
        persons = service.person_page(session, policy=policy, query=query)
        ids = frozenset(p.id for p in persons.items)
        return _found(ids, frozenset(), _shown("person", policy.person_fields, _PERSON_FIELDS))
    if read.action == "arrest.search":
        arrest_query = _arrest_query(q)
        service.check_arrest_query(arrest_query)
        arrests = service.arrest_page(session, policy=policy, query=arrest_query)
        shown = _shown("arrest", policy.arrest_fields, repo.arrest_columns(policy)[3:])
        return _found(frozenset(), frozenset(a.id for a in arrests.items), shown)
    if read.action == "person.get":
        person_id = _id(q, "person_id")
        person = repo.visible_person(session, policy, person_id)
        if person is None:
            return Disclosure(refused=True, code=NotFound.code, field="person_id",
                              message=f"no person with id {person_id}")  # fmt: skip
        involvements = repo.visible_involvements_of_person(session, policy, person_id)
        shown = _shown("person", policy.person_fields, _PERSON_FIELDS)
        return _found(frozenset({person.id}), frozenset(i.arrest_id for i in involvements), shown)
    if read.action == "arrest.get":
        arrest_id = _id(q, "arrest_id")
        arrest = repo.visible_arrest(session, policy, arrest_id)
        if arrest is None:
            return Disclosure(refused=True, code=NotFound.code, field="arrest_id",
                              message=f"no arrest with id {arrest_id}")  # fmt: skip
        involvements = repo.visible_involvements_of_arrest(session, policy, arrest_id)
        shown = {
            **_shown("person", policy.person_fields, _PERSON_FIELDS),
            **_shown("arrest", policy.arrest_fields, (*ARREST_SCALARS, *ARREST_PARTS)),
        }
        return _found(frozenset(i.person_id for i in involvements), frozenset({arrest.id}), shown)
    raise InvalidInput(f"action '{read.action}' is not an external read", field="action")


def _found(persons: frozenset[int], arrests: frozenset[int], shown: dict[str, str]) -> Disclosure:
    # Fields are disclosed only by an answer that carries a record.
    return Disclosure(
        refused=False,
        person_ids=persons,
        arrest_ids=arrests,
        fields=shown if persons or arrests else {},
    )


def _shown(kind: str, projection: FieldProjection, names: tuple[str, ...]) -> dict[str, str]:
    """Each field of ``names`` the projection returns, with its mask rule ("visible": whole),
    and each sub-field the floor withholds inside a granted part ("withheld")."""
    shown = {
        f"{kind}.{name}": projection.rules.get(name, "visible")
        for name in names
        if projection.shows(name)
    }
    for name in projection.withheld:
        if f"{kind}.{name.split('.')[0]}" in shown:
            shown[f"{kind}.{name}"] = "withheld"
    return shown


def _id(query: Mapping[str, Any], name: str) -> int:
    value = query.get(name)
    if not isinstance(value, int):
        raise InvalidInput(f"the recorded read has no {name}", field=name)
    return value


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def _instant(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _person_query(q: Mapping[str, Any]) -> PersonQuery:
    # The entry keeps the criteria as the canonical JSON wrote them (dates as ISO text).
    return PersonQuery(
        name=q.get("name"),
        birth_date=_day(q.get("birth_date")),
        birth_year=q.get("birth_year"),
        sid=q.get("sid"),
        fbi_number=q.get("fbi_number"),
        offset=int(q.get("offset", 0)),
        limit=q.get("limit"),
        count=bool(q.get("count", False)),
    )


def _arrest_query(q: Mapping[str, Any]) -> ArrestQuery:
    state = q.get("state")
    return ArrestQuery(
        otn=q.get("otn"),
        incident_number=q.get("incident_number"),
        docket_number=q.get("docket_number"),
        arrested_from=_instant(q.get("arrested_from")),
        arrested_to=_instant(q.get("arrested_to")),
        statute=q.get("statute"),
        state=None if state is None else ArrestState(state),
        offset=int(q.get("offset", 0)),
        limit=q.get("limit"),
        count=bool(q.get("count", False)),
    )
