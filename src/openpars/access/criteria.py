"""What a search may ask and in which order it answers: one set of rules for every reader.

A criterion asks "is there a visible record whose field equals this?", so it discloses the
field as surely as a response showing it; an order discloses how the sort key compares. So a
criterion is admitted only when the caller's projection returns its field whole, and results
are ordered by a field only when it is returned whole; otherwise by id. The refusals depend on
the policy and the query alone, never on the data, so they tell nothing about any record.

The API, the console and the benchmarks all reach these checks through ``access.service``.
"""

from __future__ import annotations

from collections.abc import Mapping

from openpars.access.enforcement import check_query_shape
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import OFFSET_MAX, PAGE_MAX, ArrestQuery, PersonQuery, effective_limit
from openpars.errors import Forbidden, InvalidInput
from openpars.records.validation import name_key

# Each criterion and the fields it tests. A name tests the person's own name key (family,
# given, then middle name) and, where aliases are searched, the aliases' names.
PERSON_CRITERIA: Mapping[str, tuple[str, ...]] = {
    "name": ("family_name", "given_name"),
    "birth_date": ("birth_date",),
    "sid": ("sid",),
    "fbi_number": ("fbi_number",),
}
ARREST_CRITERIA: Mapping[str, tuple[str, ...]] = {
    "otn": ("otn",),
    "incident_number": ("incident_number",),
    "docket_number": ("docket_number",),
    "arrested_from": ("arrested_at",),
    "arrested_to": ("arrested_at",),
    "statute": ("charges",),
    "state": ("state",),
}
# A name key of more words than this reaches past family and given name into the middle name.
_NAME_WORDS_WITHOUT_MIDDLE = 2
# Selective criteria: what an outside agency's search must contain (harvesting guard).
PERSON_IDENTIFIERS = ("sid", "fbi_number")
ARREST_IDENTIFIERS = ("otn", "incident_number", "docket_number")
MIN_NAME_LETTERS = 2
# The last year whose whole range (up to 1 January of the next) a date can hold.
BIRTH_YEAR_MAX = 9998


def check_page(*, offset: int, limit: int | None) -> None:
    """Payload validation of a page window, the same for the API and the console."""
    if limit is not None and not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_MAX}; got {limit}", field="limit")
    if not 0 <= offset <= OFFSET_MAX:
        raise InvalidInput(
            f"offset must be between 0 and {OFFSET_MAX}; got {offset}", field="offset"
        )


def check_birth_year(year: int | None) -> None:
    """Payload validation of a year of birth: one a date can hold."""
    if year is not None and not 1 <= year <= BIRTH_YEAR_MAX:
        raise InvalidInput(
            f"birth_year must be between 1 and {BIRTH_YEAR_MAX}; got {year}", field="birth_year"
        )


def _refuse(policy: ReadPolicy, kind: str, criterion: str, field: str) -> Forbidden:
    projection = policy.person_fields if kind == "person" else policy.arrest_fields
    clause = f"{kind}.{field}"
    if f"floor: {clause} removed" in policy.clauses:
        why = f"the site floor removes {clause}"
    elif projection.shows(field):
        rule = projection.rules.get(field, "masked")
        why = f"your agreement shows {clause} only masked ({rule})"
    else:
        why = f"your agreement does not show {clause}"
    hint = " (search by birth_year instead)" if criterion == "birth_date" else ""
    return Forbidden(
        f"search criterion '{criterion}' is not allowed: {why}, and a field you cannot see "
        f"whole cannot be searched by{hint}",
        code="criterion_not_allowed",
        field=criterion,
    )


def names_plain(policy: ReadPolicy) -> bool:
    """Whether person names (family, given and middle) are shown whole: the name order."""
    fields = policy.person_fields
    return all(fields.plain(f) for f in ("family_name", "given_name", "middle_name"))


def aliases_searched(policy: ReadPolicy) -> bool:
    """Whether a name search also matches aliases: only where aliases are shown whole."""
    return policy.person_fields.plain("aliases")


def arrests_by_time(policy: ReadPolicy) -> bool:
    """Whether arrests are listed newest first (arrest time shown whole), else by id."""
    return policy.arrest_fields.plain("arrested_at")


def admit_person_criteria(policy: ReadPolicy, query: PersonQuery) -> None:
    """Refuse a person criterion whose field the projection withholds or masks."""
    fields = policy.person_fields
    for criterion, tested in PERSON_CRITERIA.items():
        if getattr(query, criterion) is None:
            continue
        for field in tested:
            if not fields.plain(field):
                raise _refuse(policy, "person", criterion, field)
    if query.birth_year is not None and not fields.shows_year("birth_date"):
        raise _refuse(policy, "person", "birth_year", "birth_date")
    if (
        query.name is not None
        and not fields.plain("middle_name")
        and len(name_key(query.name).split()) > _NAME_WORDS_WITHOUT_MIDDLE
    ):
        raise Forbidden(
            "search criterion 'name' is not allowed with more than two words: your agreement "
            "does not show person.middle_name whole, and words after the family and given "
            "name would test it; search by family and given name",
            code="criterion_not_allowed",
            field="name",
        )


def admit_arrest_criteria(policy: ReadPolicy, query: ArrestQuery) -> None:
    """Refuse an arrest criterion whose field the projection withholds or masks."""
    for criterion, tested in ARREST_CRITERIA.items():
        if getattr(query, criterion) is None:
            continue
        for field in tested:
            if not policy.arrest_fields.plain(field):
                raise _refuse(policy, "arrest", criterion, field)


def _check_reach(policy: ReadPolicy, *, offset: int, limit: int | None) -> None:
    """An outside agency reaches at most max_results rows per query, offsets included."""
    if not policy.external or policy.max_results is None:
        return
    size = effective_limit(limit, policy.max_results)
    if offset + size > policy.max_results:
        raise InvalidInput(
            f"offset {offset} with a page of {size} reaches row {offset + size}, beyond the "
            f"agreement's maximum of {policy.max_results} results per query; offset + limit "
            f"may be at most {policy.max_results}",
            field="offset",
        )


def _selective_refusal(what: str) -> Forbidden:
    return Forbidden(
        f"an outside agency's search must be selective: give {what}; a date, state, statute "
        "or birth year alone lists people rather than finds one",
        code="query_shape_not_allowed",
        field="query",
    )


def check_person_search(policy: ReadPolicy, query: PersonQuery) -> None:
    """Every rule a person search must pass under a decided policy, in one place."""
    admit_person_criteria(policy, query)
    identifiers = any(getattr(query, c) is not None for c in PERSON_IDENTIFIERS)
    check_query_shape(policy, name=query.name, identifiers=identifiers, limit=query.limit)
    named = query.name is not None and (
        sum(ch.isalpha() for ch in name_key(query.name)) >= MIN_NAME_LETTERS
    )
    if policy.external and not (identifiers or named):
        raise _selective_refusal(
            f"a name of at least {MIN_NAME_LETTERS} letters, a SID or an FBI number"
        )
    _check_reach(policy, offset=query.offset, limit=query.limit)


def check_arrest_search(policy: ReadPolicy, query: ArrestQuery) -> None:
    """Every rule an arrest search must pass under a decided policy, in one place."""
    admit_arrest_criteria(policy, query)
    identifiers = any(getattr(query, c) is not None for c in ARREST_IDENTIFIERS)
    check_query_shape(policy, name=None, identifiers=identifiers, limit=query.limit)
    if policy.external and not identifiers:
        raise _selective_refusal("an OTN, an incident number or a docket number")
    _check_reach(policy, offset=query.offset, limit=query.limit)
