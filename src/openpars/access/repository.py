"""All SQL of the read path. Every statement carries the policy's row filter."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    ColumnElement,
    Enum,
    Integer,
    Select,
    Table,
    Text,
    and_,
    any_,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased, joinedload, lazyload

from openpars.access.criteria import aliases_searched, arrests_by_time, names_plain
from openpars.access.filters import (
    arrest_visible,
    charge_shown,
    person_visible,
    visible_involvement,
)
from openpars.access.models import VisiblePerson
from openpars.access.policy import ReadPolicy
from openpars.access.schemas import ArrestQuery, PersonQuery
from openpars.access.shaping import ARREST_SUMMARY_SCALARS, PERSON_SCALARS
from openpars.access.visibility import (
    needs_refresh,
    set_exists,
    set_id_of_key,
    set_key,
    visible_in_set,
)
from openpars.oversight.models import Canary
from openpars.prepared import (
    Pending,
    Prepared,
    generic_plans,
    param,
    pipeline,
    plans_by_values,
    prepared,
)
from openpars.records.models import (
    Arraignment,
    Arrest,
    BailRecommendation,
    Charge,
    ChargingDecision,
    CustodyEvent,
    Involvement,
    Person,
    PersonAlias,
)
from openpars.records.validation import name_key, prefix_upper_bound

# Totals are exact up to this many rows, then reported as "at least".
TOTAL_CAP = 200
# A page's aliases are fetched with an IN list padded to one of these sizes, so a handful of
# prepared statements serve every page size. At most 50 values per statement: psycopg parses
# a statement with more parameters again on every execution (0.37 ms for 64).
_ALIAS_BUCKETS = (1, 5, 10, 25, 50)


@dataclass(frozen=True, slots=True)
class Found:
    """One page of rows and what is known of the total."""

    rows: list[dict[str, Any]]
    # Visible rows in all, exact up to TOTAL_CAP; otherwise a lower bound ("at least").
    total: int
    total_is_exact: bool
    # Whether visible rows follow this page.
    has_more: bool
    # The page's aliases by person id, where the page's statement carried them (an external
    # first page sent ahead on PostgreSQL: ``_first_id_page``, ``_first_name_pages``); None:
    # read them with ``send_aliases``.
    aliases: dict[int, list[dict[str, Any]]] | None = None


def _name_range(column: ColumnElement[str]) -> ColumnElement[bool]:
    return and_(column >= param("name_key", column), column < param("name_upper", column))


# A page's size and whether it skips rows. The size is written into the statement and the
# offset is left out of a first page: PostgreSQL plans a LIMIT or OFFSET parameter as one tenth
# of the rows, so a prepared search never got its cheap generic plan and was planned again on
# every execution (a third of the cost of a name search).
Window = tuple[int, bool]


def _page(stmt: Select[Any], window: Window, *columns: ColumnElement[Any]) -> Select[Any]:
    rows, skips = window
    stmt = stmt.order_by(*columns).limit(literal_column(str(int(rows))))
    return stmt.offset(_OFFSET) if skips else stmt


_OFFSET = BindParameter("offset", None, type_=Integer(), required=False)
_PERSONS = cast(Table, Person.__table__)
_VISIBLE = VisiblePerson.__table__
_ARRESTS = Arrest.__table__


def person_columns(policy: ReadPolicy) -> tuple[str, ...]:
    """The person columns a search selects: only those the projection shows leave the database."""
    shown = tuple(c for c in PERSON_SCALARS if policy.person_fields.shows(c))
    return ("id", *shown)


# What a person-search statement returns: a page of rows, a count capped at TOTAL_CAP + 1, or
# an exact count (only to find where the alias section starts on a page beyond the cap).
PAGE, CAPPED, EXACT = "page", "capped", "exact"


def _person_branch(
    policy: ReadPolicy,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    branch: str,
    mode: str,
    in_set: bool,
    window: Window,
    by_name: bool = True,
) -> Select[Any]:
    """One statement of a person search; `shape` says which criteria the query has.

    Pages are in name order only `by_name` (names shown whole), otherwise in id order: an
    order on a hidden name would tell how it compares.

    With `in_set`, visibility is membership of the visibility set of the policy's row key
    (bound as ``vis_key``, see ``access.models``): the name branches then walk the set (its
    name index, and the copy of the searchable columns its rows carry), so they walk only
    persons they may return, and read the shown columns of each row they return from
    ``persons`` by key. A search without a name tests membership. Without, each candidate is
    proved visible.
    """
    sid, fbi, birth, year, _name = shape
    # A count needs no column but the id: the index alone may answer it.
    counting = mode != PAGE
    if in_set and branch != "all":
        # The set: its rows carry the searchable columns (the shown ones are joined below).
        t = _VISIBLE.c
        person_id = t.person_id
        stmt = select(person_id.label("id")).where(t.set_id == set_id_of_key())
    else:
        t = _PERSONS.c
        person_id = t.id
        stmt = select(person_id) if counting else select(*(t[c] for c in columns))
        stmt = stmt.where(visible_in_set(person_id) if in_set else person_visible(policy))
    if sid:
        stmt = stmt.where(t.sid == param("sid", t.sid))
    if fbi:
        stmt = stmt.where(t.fbi_number == param("fbi_number", t.fbi_number))
    if birth:
        stmt = stmt.where(t.birth_date == param("birth_date", t.birth_date))
    if year:
        stmt = stmt.where(
            t.birth_date >= param("born_from", t.birth_date),
            t.birth_date < param("born_before", t.birth_date),
        )
    if branch == "own":
        stmt = stmt.where(_name_range(t.name_key))
    elif branch == "alias":
        alias_key = PersonAlias.__table__.c.name_key
        aliases = select(PersonAlias.person_id).where(_name_range(alias_key))
        stmt = stmt.where(person_id.in_(aliases), ~_name_range(t.name_key))
    if mode == CAPPED:
        stmt = stmt.limit(TOTAL_CAP + 1)
    if mode != PAGE:
        return select(func.count()).select_from(stmt.subquery())
    if in_set and branch != "all":
        # The set carries no shown column: each row the set and the criteria let through is
        # looked up in `persons` by primary key, an inner loop under the walk, so only the
        # page's rows (and the rows an offset skips) are read there. Cutting the page
        # first in a subquery and joining after it cost SQLite a materialised page and a sort
        # (1.43x the bare page against 1.29x at 50,000 persons).
        p = _PERSONS.c
        stmt = stmt.with_only_columns(*(p[c] for c in columns)).join_from(
            _VISIBLE, _PERSONS, p.id == person_id
        )
    return _page(stmt, window, *((t.name_key,) if by_name else ()), person_id)


def prepared_person_statement(
    session: Session,
    policy: ReadPolicy,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    branch: str,
    mode: str,
    in_set: bool = False,
    window: Window = (0, False),
) -> Prepared:
    """One branch of a person search (a page, with its window, or a count), prepared once
    per policy."""
    # With a set, the statement depends on no part of the policy but the row key bound to it
    # and the order its projection allows.
    filter_key = "set" if in_set else policy.row_key()
    by_name = names_plain(policy)
    page = (window, by_name) if mode == PAGE else None
    key = ("person", filter_key, shape, columns, branch, mode, page)
    return prepared(
        session,
        key,
        lambda: _person_branch(policy, shape, columns, branch, mode, in_set, window, by_name),
    )


def _person_values(query: PersonQuery) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sid": query.sid,
        "fbi_number": query.fbi_number,
        "birth_date": query.birth_date,
    }
    if query.birth_year is not None:
        values |= {
            "born_from": date(query.birth_year, 1, 1),
            "born_before": date(query.birth_year + 1, 1, 1),
        }
    if query.name is not None:
        key = name_key(query.name)
        values |= {"name_key": key, "name_upper": prefix_upper_bound(key)}
    return values


@dataclass(frozen=True, slots=True)
class SentPages:
    """The first statement of a person search, sent ahead under a policy (a guess, sent with
    the decision's reads): used only by a search under that very policy and limit."""

    policy: ReadPolicy
    limit: int
    # The first page of the first section ("all", or "own" for a name).
    first: Pending | MarkedPage
    # Whether ``first`` also carries the alias section's first page (see _first_name_pages):
    # its rows then say their section.
    with_alias: bool = False
    # Whether the set searched exists, told by an identifier's page itself (a lookup by SID,
    # FBI number or birth date often finds nothing; see _first_id_page): read only if the
    # page is empty, where the search would otherwise ask in a round trip of its own. Not
    # asked with a name page, which seldom comes back empty.
    set_found: Callable[[], bool] | None = None
    # Whether the rows of a name's first pages (``with_alias``) carry their persons' aliases
    # (``_carried_aliases``; an identifier's page says so itself, ``MarkedPage``).
    carries_aliases: bool = False


# Which section a row of _first_name_pages comes from.
_SECTION = "section"
# Marks the row _first_id_page adds after its page when the set searched is missing.
_SET_MISSING = "set_missing"
# The aliases an identifier page carries on each row (see _first_id_page).
_ALIASES = "aliases_json"


class MarkedPage:
    """The rows of a first identifier page (``_first_id_page``), read once: the page's rows,
    and whether the set it searched exists (the row marked missing, if any, is dropped)."""

    __slots__ = ("_aliases", "_missing", "_pending", "_rows", "_with_aliases")

    def __init__(self, pending: Pending, with_aliases: bool = False) -> None:
        self._pending = pending
        self._rows: list[dict[str, Any]] | None = None
        self._missing = False
        self._with_aliases = with_aliases
        self._aliases: dict[int, list[dict[str, Any]]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """The page's rows (waits for the server if they have not arrived yet)."""
        if self._rows is None:
            rows = self._pending.rows()
            self._missing = any(row[_SET_MISSING] for row in rows)
            self._rows = [row for row in rows if not row.pop(_SET_MISSING)]
            if self._with_aliases:
                self._aliases = _carried(self._rows)
        return self._rows

    def aliases(self) -> dict[int, list[dict[str, Any]]] | None:
        """The aliases of the page's persons by id, if the page carried them (else None)."""
        self.rows()
        return self._aliases

    def set_found(self) -> bool:
        """Whether the set the page searched exists."""
        self.rows()
        return not self._missing


def _first_id_page(
    policy: ReadPolicy,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    window: Window,
    with_aliases: bool = False,
) -> Select[Any]:
    """An identifier's first page in the set and, after its rows, one row of NULLs marked
    ``set_missing`` only if no set has the row key searched: one statement where the page and
    the question whether its set exists were two (each statement in a PostgreSQL pipeline
    costs the client about 25 us and the server its own execution).

    ``with_aliases`` (PostgreSQL): each row also carries its person's aliases, as the text of
    a JSON array of {family_name, given_name} in alias order (``_ALIASES``; NULL for none),
    so the page's alias statement is not sent at all. An identifier page holds a person or
    two: one correlated probe of the alias index each, the same rows the alias statement
    reads, under the same row-level security."""
    page = _person_branch(
        policy, shape, columns, "all", PAGE, True, window, names_plain(policy)
    ).subquery("id_page")
    extra: list[ColumnElement[Any]] = []
    missing: list[ColumnElement[Any]] = []
    if with_aliases:
        extra = [_carried_aliases(page.c.id)]
        missing = [type_coerce(null(), Text()).label(_ALIASES)]
    marked = union_all(
        select(literal_column("0", Integer()).label(_SET_MISSING), *page.c, *extra),
        select(
            literal_column("1", Integer()).label(_SET_MISSING),
            *(type_coerce(null(), c.type).label(c.name) for c in page.c),
            *missing,
        ).where(set_id_of_key().is_(None)),
    ).subquery("first_page")
    # The page's rows in its order, then the mark (PostgreSQL appends the second branch's
    # rows after the first's, as _first_name_pages relies on too).
    return select(*marked.c)


def _carried_aliases(person_id: ColumnElement[int]) -> ColumnElement[Any]:
    """The aliases of the person ``person_id`` names, as the text of a JSON array of
    {family_name, given_name} in alias order (NULL for none), labelled ``_ALIASES``: a
    correlated probe of the alias index per row, reading what the alias statement reads
    (``_aliases_array_stmt``), under the same row-level security."""
    a = PersonAlias.__table__.c
    entry = func.json_build_object(
        literal_column("'family_name'"), a.family_name,
        literal_column("'given_name'"), a.given_name,
    )  # fmt: skip
    agg = select(sql_cast(func.json_agg(aggregate_order_by(entry, a.id)), Text())).where(
        a.person_id == person_id
    )
    return agg.scalar_subquery().label(_ALIASES)


def _carried(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The aliases rows carried (``_carried_aliases``), by person id; the column is dropped."""
    return {
        row["id"]: [] if (text := row.pop(_ALIASES)) is None else json.loads(text) for row in rows
    }


def _first_name_pages(
    policy: ReadPolicy,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    want: int,
    with_aliases: bool = False,
) -> Select[Any]:
    """The first page of a name search's own-name section and, only where that page is not
    full, the alias section's first page, in one statement (section 0 rows, then section 1).

    ``with_aliases`` (PostgreSQL): each row also carries its person's aliases
    (``_carried_aliases``), computed over the page's rows only (after their LIMIT), so the
    page's alias statement is not sent.

    Sending the alias page ahead unconditionally read the alias index for nothing on most
    name pages (about 1 ms at p50, bench/search.py's name prefixes on PostgreSQL); reading it
    after the first page cost a round trip. Here the own page is computed once (a CTE) and
    the alias page sits under a condition on it alone, which PostgreSQL evaluates once before
    the branch (a one-time filter): a full own page never starts the alias walk.
    """
    by_name = names_plain(policy)
    window = (want, False)
    own = _person_branch(policy, shape, columns, "own", PAGE, True, window, by_name).cte("own_page")
    aliases = _person_branch(policy, shape, columns, "alias", PAGE, True, window, by_name).subquery(
        "alias_page"
    )
    short = select(func.count()).select_from(own).scalar_subquery() < literal_column(
        str(int(want)), Integer()
    )
    own_extra = [_carried_aliases(own.c.id)] if with_aliases else []
    alias_extra = [_carried_aliases(aliases.c.id)] if with_aliases else []
    both = union_all(
        select(literal_column("0", Integer()).label(_SECTION), *own.c, *own_extra),
        select(literal_column("1", Integer()).label(_SECTION), *aliases.c, *alias_extra).where(
            short
        ),
    ).subquery("first_pages")
    # The rows in the order the branches give them (PostgreSQL appends the second branch's
    # rows after the first's, each in its page order); the section says which is which.
    return select(*both.c)


def send_first_pages(
    session: Session, policy: ReadPolicy, query: PersonQuery, *, limit: int
) -> SentPages | None:
    """Send the statement a search under ``policy`` starts with, without reading it (in a
    pipeline on PostgreSQL it travels with the statements around it); None where the search
    would need other statements first (a set to refresh, no set to search)."""
    if not policy.external or needs_refresh(session):
        return None
    key = set_key(session, policy)
    if key is None:
        return None
    shape = _shape(query)
    columns = person_columns(policy)
    values = _person_values(query) | {"vis_key": key}
    branch = "all" if query.name is None else "own"
    window = (limit + 1, query.offset > 0)
    page = prepared_person_statement(session, policy, shape, columns, branch, PAGE, True, window)
    if query.name is None:
        # An identifier's page, saying whether its set exists: PostgreSQL keeps its generic
        # plan by itself.
        return _send_id_page(session, policy, query, limit, shape, columns, values)
    # A name page walks the set's name index in order whatever the range: its generic plan is
    # the plan (see _search_persons).
    if query.offset == 0 and aliases_searched(policy):
        # A first page that may reach the alias section: both sections' first pages in one
        # statement, the alias page read only if the own-name page is not full.
        carry = _carries_aliases(session, policy)
        both = prepared(
            session,
            ("person-first", shape, columns, names_plain(policy), limit + 1, carry),
            partial(_first_name_pages, policy, shape, columns, limit + 1, carry),
        )
        with generic_plans(session):
            first = both.send(session, values)
        return SentPages(policy, limit, first, with_alias=True, carries_aliases=carry)
    with generic_plans(session):
        first = page.send(session, values | {"offset": query.offset})
    return SentPages(policy, limit, first)


def _send_id_page(
    session: Session,
    policy: ReadPolicy,
    query: PersonQuery,
    limit: int,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    values: dict[str, Any],
) -> SentPages:
    """Send an identifier's page in the set bound as ``vis_key``, with whether that set exists
    (``_first_id_page``): one statement where there were two whenever the page is empty."""
    window = (limit + 1, query.offset > 0)
    with_aliases = _carries_aliases(session, policy)
    marked = prepared(
        session,
        ("person-first-id", shape, columns, names_plain(policy), window, with_aliases),
        partial(_first_id_page, policy, shape, columns, window, with_aliases),
    )
    rows = MarkedPage(marked.send(session, values | {"offset": query.offset}), with_aliases)
    return SentPages(policy, limit, rows, set_found=rows.set_found)


def _carries_aliases(session: Session, policy: ReadPolicy) -> bool:
    """Whether a first page sent ahead carries its persons' aliases: where they are shown, on
    PostgreSQL (one statement fewer in the pipeline; SQLite has no round trip to save)."""
    return policy.person_fields.shows("aliases") and session.get_bind().dialect.name == "postgresql"


def _shape(query: PersonQuery) -> tuple[bool, ...]:
    return (
        query.sid is not None,
        query.fbi_number is not None,
        query.birth_date is not None,
        query.birth_year is not None,
        query.name is not None,
    )


def search_persons(
    session: Session,
    policy: ReadPolicy,
    query: PersonQuery,
    *,
    limit: int,
    sent: SentPages | None = None,
) -> Found:
    """A page of visible persons (columns as the projection allows) and the total.

    A name search lists persons whose own name matches first, then persons matching only by
    an alias (where the projection shows aliases), each section in name order (in id order
    where names are not shown whole). Each section is one statement that walks its name
    index in order and stops after a page of visible rows, and the alias section is read only
    when the page reaches it: an OR of the two made both engines gather, filter and sort every
    match, and a merge of the two in name order made every page read every alias match.
    """
    shape = _shape(query)
    columns = person_columns(policy)
    values = _person_values(query)
    if needs_refresh(session):
        # The set's refresh (set_key) is planned for its values, not on the generic plans the
        # decision may have turned on for a name page (prepared.generic_plans).
        plans_by_values(session)
    key = set_key(session, policy)
    if sent is not None and (sent.policy is not policy or sent.limit != limit):
        sent = None  # sent under another policy: its rows are dropped unread
    if key is not None:
        keyed = values | {"vis_key": key}
        if sent is None and query.name is None:
            # An identifier's page often comes back empty (a lookup by SID finds nothing, or
            # nobody the agreement shows): it says itself whether its set exists.
            sent = _send_id_page(session, policy, query, limit, shape, columns, keyed)
        found = _search_persons(
            session, policy, query, limit, shape, columns, keyed, in_set=True, sent=sent
        )
        # Nothing found: there may be no set for this filter yet (built by the tick); then
        # the search runs again with probes. A first page sent ahead brought the answer.
        if found.rows or found.total:
            return found
        if sent is not None and sent.set_found is not None:
            exists = sent.set_found()
        else:
            exists = set_exists(session, key)
        if exists:
            return found
    # Probes, where no set answers: planned for their values, as ever (generic plans may have
    # been turned on for the name pages by the decision's statement, prepared.generic_plans).
    plans_by_values(session)
    return _search_persons(session, policy, query, limit, shape, columns, values, in_set=False)


def _search_persons(
    session: Session,
    policy: ReadPolicy,
    query: PersonQuery,
    limit: int,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    values: dict[str, Any],
    *,
    in_set: bool,
    sent: SentPages | None = None,
) -> Found:
    offset, want = query.offset, limit + 1
    # See page_of.
    generic = in_set and policy.external and query.name is not None
    # Pages sent ahead, by (branch, start): the first page_of of one reads its rows.
    ahead: dict[tuple[str, int], Callable[[], list[dict[str, Any]]]] = {}
    # The aliases the first pages sent ahead carried, by person id (None: not carried).
    carried: dict[int, list[dict[str, Any]]] | None = None
    if sent is not None and sent.with_alias:
        # The own-name page and, if that page is not full, the alias section's first page.
        own_rows: list[dict[str, Any]] = []
        alias_rows: list[dict[str, Any]] = []
        first_rows = sent.first.rows()
        if sent.carries_aliases:
            carried = _carried(first_rows)
        for row in first_rows:
            (alias_rows if row.pop(_SECTION) else own_rows).append(row)
        ahead[("own", offset)] = lambda: own_rows
        if len(own_rows) < want:
            ahead[("alias", 0)] = lambda: alias_rows
    elif sent is not None:
        ahead[("own" if query.name is not None else "all", offset)] = sent.first.rows

    def statement(branch: str, mode: str, window: Window = (0, False)) -> Prepared:
        return prepared_person_statement(
            session, policy, shape, columns, branch, mode, in_set, window
        )

    def page_of(branch: str, start: int) -> list[dict[str, Any]]:
        early = ahead.pop((branch, start), None)
        if early is not None:
            return early()
        page = statement(branch, PAGE, (want, start > 0))
        if not generic:
            return page.rows(session, values | {"offset": start})
        # As the external role every row of a name page carries row-level security's
        # sub-plans, which priced a custom plan (knowing the range) under the generic one, so
        # each page was planned again (0.7 ms for the own-name section, 1.2-2 ms for the alias
        # section, EXPLAIN ANALYZE at 50,000 persons) for the same plan: the set's name index
        # walked in order, or the alias index then the set by key, whatever the range (checked
        # with one- and three-letter prefixes). So the generic plan, in one round trip with
        # its two settings. (Pages by identifier keep their generic plan by themselves.)
        with pipeline(session), generic_plans(session):
            pending = page.send(session, values | {"offset": start})
        return pending.rows()

    def count_of(branch: str, mode: str) -> int:
        return int(statement(branch, mode).scalar(session, values))

    def counts_of(*branches: str) -> int:
        """The capped counts of the sections, summed; for an external name search on the
        generic plans (as its pages, for the same reason) and sent together."""
        if not generic:
            return sum(count_of(branch, CAPPED) for branch in branches)
        with pipeline(session), generic_plans(session):
            sent = [statement(branch, CAPPED).send(session, values) for branch in branches]
        return sum(int(next(iter(pending.rows()[0].values()))) for pending in sent)

    if query.name is None:
        rows = page_of("all", offset)
        found = _found(
            rows, offset=offset, limit=limit, wants_count=query.count,
            count=lambda: count_of("all", CAPPED),
        )  # fmt: skip
        marked = sent.first if sent is not None else None
        carried = marked.aliases() if isinstance(marked, MarkedPage) else None
        if carried is None:
            return found
        # The page sent ahead carried its persons' aliases (_first_id_page).
        aliases = {row["id"]: carried[row["id"]] for row in found.rows}
        return replace(found, aliases=aliases)
    rows = page_of("own", offset)
    if not aliases_searched(policy):
        # Aliases the caller is not shown must not answer a name search.
        return _found(
            rows, offset=offset, limit=limit, wants_count=query.count,
            count=lambda: counts_of("own"),
        )  # fmt: skip
    if len(rows) < want:
        # The own-name section ends on or before this page: the alias section follows it.
        own_total = offset + len(rows) if rows or offset == 0 else count_of("own", EXACT)
        # Always a page long (one statement per page size); only what is missing is kept.
        rows += page_of("alias", max(0, offset - own_total))[: want - len(rows)]

    def count() -> int:
        return counts_of("own", "alias")

    found = _found(rows, offset=offset, limit=limit, wants_count=query.count, count=count)
    if carried is None or any(row["id"] not in carried for row in found.rows):
        return found
    # Every row of the page came with the first pages sent ahead, its aliases with it.
    return replace(found, aliases={row["id"]: carried[row["id"]] for row in found.rows})


def _found(
    rows: list[dict[str, Any]],
    *,
    offset: int,
    limit: int,
    wants_count: bool,
    count: Callable[[], int],
) -> Found:
    """Cut the page (fetched one row long) and settle the total, counting only if needed.

    A page that is not full, and either starts at the beginning or is not empty, tells the
    total by itself; so does a full page, as a lower bound, unless the caller asked for the
    count. An empty page past the end is counted so the caller learns where the end is.
    """
    more = len(rows) > limit
    page = rows[:limit]
    if not more and (offset == 0 or page) and not wants_count:
        return Found(page, offset + len(page), True, False)
    if more and not wants_count:
        return Found(page, offset + limit + 1, False, True)
    total = count()
    return Found(page, min(total, TOTAL_CAP), total <= TOTAL_CAP, more)


def aliases_of(session: Session, person_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The aliases of a page of persons (already decided visible), by person id, each as the
    response shows it (family and given name)."""
    return send_aliases(session, person_ids)()


def send_aliases(
    session: Session, person_ids: list[int]
) -> Callable[[], dict[int, list[dict[str, Any]]]]:
    """Send the alias reads of a page; the returned function reads them (``aliases_of``).

    PostgreSQL: one statement, the ids as the text of one ``bigint[]``. As 50 int parameters
    psycopg dumped each in Python (an ``Int8`` each, then its dumper); the plan is the IN
    list's, which PostgreSQL turns into ``= ANY`` of an array anyway (EXPLAIN ANALYZE as the
    external role: the same index scan, filter and sort). Elsewhere an IN list per bucket.
    """
    sent = []
    if person_ids and session.get_bind().dialect.name == "postgresql":
        stmt = prepared(session, ("aliases", "array"), _aliases_array_stmt)
        sent.append(stmt.send(session, {"ids": _bigint_array(person_ids)}))
    else:
        for start in range(0, len(person_ids), _ALIAS_BUCKETS[-1]):
            chunk = person_ids[start : start + _ALIAS_BUCKETS[-1]]
            size = next(b for b in _ALIAS_BUCKETS if b >= len(chunk))
            padded = chunk + [chunk[-1]] * (size - len(chunk))
            stmt = prepared(session, ("aliases", size), partial(_aliases_stmt, size))
            sent.append(stmt.send(session, {f"id_{n}": pid for n, pid in enumerate(padded)}))

    def read() -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {pid: [] for pid in person_ids}
        for pending in sent:
            for row in pending.rows():
                found[row.pop("person_id")].append(row)
        return found

    return read


def _bigint_array(ids: list[int]) -> str:
    """The text of a bigint[] of these ids: the list's repr, in which an int prints as its
    digits and anything else (a bool, a float, a quoted string) fails the cast."""
    return "{" + repr(list(ids))[1:-1] + "}"


def _aliases_array_stmt() -> Select[Any]:
    t = PersonAlias.__table__.c
    ids = BindParameter("ids", None, type_=Text(), required=False)
    return (
        select(t.person_id, t.family_name, t.given_name)
        .where(t.person_id == any_(sql_cast(ids, ARRAY(BigInteger()))))
        .order_by(t.person_id, t.id)
    )


def _aliases_stmt(size: int) -> Select[Any]:
    t = PersonAlias.__table__.c
    ids = [param(f"id_{n}", t.person_id) for n in range(size)]
    return (
        select(t.person_id, t.family_name, t.given_name)
        .where(t.person_id.in_(ids))
        .order_by(t.person_id, t.id)
    )


def _arrest_stmt(
    policy: ReadPolicy,
    shape: tuple[bool, ...],
    columns: tuple[str, ...],
    count: bool,
    window: Window = (0, False),
    by_time: bool = True,
    oldest_first: bool = False,
) -> Select[Any]:
    """One statement of an arrest search; `shape` says which criteria the query has.

    Newest first only `by_time` (arrest times shown whole), otherwise by id, newest first;
    `oldest_first` reverses the order (a work queue).
    """
    t = _ARRESTS.c
    stmt = select(*(t[c] for c in columns)).where(arrest_visible(policy))
    for present, name in zip(shape, ARREST_CRITERIA, strict=True):
        if not present:
            continue
        if name == "arrested_from":
            stmt = stmt.where(t.arrested_at >= param(name, t.arrested_at))
        elif name == "arrested_to":
            stmt = stmt.where(t.arrested_at < param(name, t.arrested_at))
        elif name == "statute":
            stmt = stmt.where(t.id.in_(_statute_matches(policy)))
        else:
            stmt = stmt.where(t[name] == param(name, t[name]))
    if count:
        return select(func.count()).select_from(stmt.limit(TOTAL_CAP + 1).subquery())
    if oldest_first:
        return _page(stmt, window, *((t.arrested_at.asc(),) if by_time else ()), t.id.asc())
    return _page(stmt, window, *((t.arrested_at.desc(),) if by_time else ()), t.id.desc())


def _statute_matches(policy: ReadPolicy) -> Select[Any]:
    """The arrests with a charge of the bound statute that the caller is shown: under a
    grades-limited scope only a current charge in those grades matches (``charge_shown``)."""
    statute = Charge.__table__.c.statute
    stmt = select(Charge.arrest_id).where(statute == param("statute", statute))
    if policy.grades is None:
        return stmt
    # Its own alias of the arrest: the subquery stays uncorrelated (one pass over the matches).
    own = aliased(Arrest)
    return stmt.join(own, own.id == Charge.arrest_id).where(charge_shown(policy, own))


# The arrest criteria in the order of ArrestQuery; each is a column of its own but the dates
# (a range on arrested_at) and the statute (any charge with it).
ARREST_CRITERIA = (
    "otn",
    "incident_number",
    "docket_number",
    "arrested_from",
    "arrested_to",
    "statute",
    "state",
)


def arrest_columns(policy: ReadPolicy) -> tuple[str, ...]:
    """The arrest columns a search selects: the shown summary fields and the sealing marks."""
    shown = tuple(c for c in ARREST_SUMMARY_SCALARS if policy.arrest_fields.shows(c))
    return ("id", "sealed_at", "expunged_at", *shown)


def search_arrests(
    session: Session, policy: ReadPolicy, query: ArrestQuery, *, limit: int
) -> Found:
    """A page of visible arrests, newest first (or oldest first), and the total."""
    values = {name: getattr(query, name) for name in ARREST_CRITERIA}
    shape = tuple(v is not None for v in values.values())
    columns = arrest_columns(policy)
    by_time = arrests_by_time(policy)
    oldest = bool(query.oldest_first)
    key = (policy.row_key(), shape, columns, by_time, oldest)

    def statement(count: bool, window: Window = (0, False)) -> Prepared:
        return prepared(
            session,
            ("arrest", key, count, window),
            lambda: _arrest_stmt(policy, shape, columns, count, window, by_time, oldest),
        )

    page = statement(False, (limit + 1, query.offset > 0))
    rows = page.rows(session, values | {"offset": query.offset})
    return _found(
        rows,
        offset=query.offset,
        limit=limit,
        wants_count=query.count,
        count=lambda: int(statement(True).scalar(session, values)),
    )


def visible_person(session: Session, policy: ReadPolicy, person_id: int) -> Person | None:
    """One person, or None if missing or invisible (the two are indistinguishable); with their
    aliases in the same statement if the policy shows them, else without (never read)."""
    stmt = select(Person).where(Person.id == person_id, person_visible(policy))
    return session.scalars(stmt.options(_aliases(policy))).unique().one_or_none()


def _aliases(policy: ReadPolicy, through: Any = None) -> Any:
    """How a person's aliases load under a policy (``through``: the relationship that reaches
    the person, joined as it is by default): joined to the statement that reads the person if
    the policy shows them (one statement, not the default's two), else not at all."""
    shown = policy.person_fields.shows("aliases")
    if through is None:
        return joinedload(Person.aliases) if shown else lazyload(Person.aliases)
    person = joinedload(through)
    return person.joinedload(Person.aliases) if shown else person.lazyload(Person.aliases)


def visible_involvements_of_person(
    session: Session, policy: ReadPolicy, person_id: int
) -> list[Involvement]:
    """A person's involvements that the policy shows.

    Without their person (``Involvement.person`` is joined by default, and the person's aliases
    then read by a statement of their own): the person is the one asked for, already read, and
    a fetch shapes each involvement without it; should anything ask, it comes from the session.
    """
    stmt = (
        select(Involvement)
        .where(Involvement.person_id == person_id, visible_involvement(policy))
        .options(lazyload(Involvement.person))
        .order_by(Involvement.id)
    )
    return list(session.scalars(stmt).all())


def visible_arrest(session: Session, policy: ReadPolicy, arrest_id: int) -> Arrest | None:
    """One arrest, or None if missing or invisible.

    Without ``Arrest.involvements`` (read by default, each with its person and their aliases:
    two statements): the involvements a caller is shown are read under its policy
    (``visible_involvements_of_arrest``); the arrest's whole list is read only if asked for.
    """
    return session.scalars(
        select(Arrest)
        .where(Arrest.id == arrest_id, arrest_visible(policy))
        .options(lazyload(Arrest.involvements))
    ).one_or_none()


def visible_arrest_alone(session: Session, policy: ReadPolicy, arrest_id: int) -> Arrest | None:
    """One arrest's own columns, or None if missing or invisible: ``visible_arrest`` without
    any of its parts, which a fetch reads apart (``send_arrest_parts``), only those the
    caller's policy shows. Its parts stay lazy: nothing here reads them."""
    return session.scalars(
        select(Arrest)
        .where(Arrest.id == arrest_id, arrest_visible(policy))
        .options(lazyload(Arrest.involvements), *(lazyload(p) for p in _PART_RELATIONS))
    ).one_or_none()


# The parts of an arrest (``shaping.ARREST_PARTS``): the table of each, in the order the
# arrest's relationship reads it.
_PART_TABLES: dict[str, tuple[Table, tuple[str, ...]]] = {
    "charges": (cast(Table, Charge.__table__), ("stage", "revision", "sequence")),
    "charging_decisions": (cast(Table, ChargingDecision.__table__), ("id",)),
    "bail_recommendations": (cast(Table, BailRecommendation.__table__), ("id",)),
    "arraignment": (cast(Table, Arraignment.__table__), ("id",)),
    "custody": (cast(Table, CustodyEvent.__table__), ("id",)),
}
_PART_RELATIONS = (
    Arrest.charges,
    Arrest.charging_decisions,
    Arrest.bail_recommendations,
    Arrest.arraignment,
    Arrest.custody,
)


def _part_stmt(part: str) -> Select[Any]:
    table, order = _PART_TABLES[part]
    return (
        select(*table.c)
        .where(table.c.arrest_id == param("arrest_id", table.c.arrest_id))
        .order_by(*(table.c[name] for name in order))
    )


def send_arrest_parts(
    session: Session, arrest_id: int, parts: tuple[str, ...]
) -> Callable[[], dict[str, list[SimpleNamespace]]]:
    """Send the reads of these parts of an arrest (already decided visible) together (one
    round trip on PostgreSQL, a pipeline); the returned function reads them, each part's rows
    as objects with the columns as attributes, enumerated values as their enums (as the ORM
    reads them). Only the parts named are read: a fetch names those its policy shows."""
    sent = {}
    with pipeline(session) if parts else nullcontext():
        for part in parts:
            stmt = prepared(session, ("arrest-part", part), partial(_part_stmt, part))
            sent[part] = stmt.send(session, {"arrest_id": arrest_id})

    def read() -> dict[str, list[SimpleNamespace]]:
        found: dict[str, list[SimpleNamespace]] = {}
        for part, pending in sent.items():
            enums = _PART_ENUMS[part]
            rows = pending.rows()
            for row in rows:
                for name, kind in enums:
                    if row[name] is not None:
                        row[name] = kind(row[name])
            found[part] = [SimpleNamespace(**row) for row in rows]
        return found

    return read


_PART_ENUMS: dict[str, tuple[tuple[str, Any], ...]] = {
    part: tuple(
        (str(c.key), c.type.enum_class)
        for c in table.c
        if isinstance(c.type, Enum) and c.type.enum_class is not None
    )
    for part, (table, _) in _PART_TABLES.items()
}


def is_canary_arrest(session: Session, arrest_id: int) -> bool:
    """Whether an arrest is a canary: workflow steps treat one as missing for every internal
    writer, as the read filter does (``access.filters``)."""
    stmt = select(Canary.id).where(Canary.arrest_id == arrest_id)
    return session.scalars(stmt).first() is not None


def visible_involvements_of_arrest(
    session: Session, policy: ReadPolicy, arrest_id: int
) -> list[Involvement]:
    """An arrest's involvements that the policy shows (the arrest itself already passed)."""
    stmt = (
        select(Involvement)
        .where(Involvement.arrest_id == arrest_id, visible_involvement(policy))
        .options(_aliases(policy, Involvement.person))
        .order_by(Involvement.id)
    )
    return list(session.scalars(stmt).unique().all())
