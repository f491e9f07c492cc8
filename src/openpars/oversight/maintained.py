"""Explanations kept up to date by the refresh, like an index (the renewal report at scale).

Explaining a year of accesses is one statement over every fact of the year (minutes at 10M
entries). Most of a fact's explanation is settled when it is derived, but not all of it: a
later write can change it (docs/oversight.md, "Maintained explanations"):

- the person's charge state at the access (the charge timeline is rebuilt when a decision,
  back-dated or not, or an approved charge is recorded; an involvement as arrestee added or
  amended; an arrest's numbers amended);
- the sweep count (the user's external reads within the sweep window either side: reads made
  after the access, or committed late, count);
- the follow-up rule (an earlier access by the same user citing the same case, explained
  directly, or shredded since);
- whether a cited reference names an arrest at all (an arrest created or renumbered later).

So ``refresh`` keeps ``oversight_explained_pairs`` under the rules stored in
``oversight_explanation_rules`` (none stored: nothing kept): it explains the new facts and
re-explains every fact one of those changes may touch (a superset: the facts of the persons a
write touched, the facts within the sweep window of a new read by the same user, the
follow-ups of any of these and of shredded facts), in the refresh's transaction; the last
one, a reference naming an arrest, is not kept but resolved when the rows are read
(``report_sql.pairs``). A refresh from the first leaf, a bulk load or a change of rules
(``maintain``) explains everything again. ``tests/oversight/test_maintained.py`` checks the
kept rows and the reports read from them against a recomputation after each kind of write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    column,
    exists,
    func,
    literal,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from openpars.agreements.models import Agreement
from openpars.audit import by_actor
from openpars.audit.events import AuditKind
from openpars.audit.models import AuditEntry, AuditLeaf
from openpars.oversight import explain_sql as sql
from openpars.oversight.explain import (
    CYCLE_FACTS,
    _cycle_facts,
    _temporary,
    purpose_grants,
)
from openpars.oversight.explain_sql import Rules, Selection
from openpars.oversight.facts import (
    ARRESTEES_INVOLVEMENTS,
    BULK_MEMORY,
    EXPLAINED_PAIRS,
    EXPLANATION_RULES,
    LOCK_NOT_AVAILABLE,
    NAMED,
    TIMELINE_CHARGES,
    TIMELINE_DECISIONS,
    AccessFact,
    ExplanationRules,
    FactsWatermark,
    Refreshed,
    _purge_sql,
    arrestees_named_sql,
    local_settings,
    refresh,
    whole_store_memory,
)
from openpars.records.enums import ChargeStage, InvolvementRole

RULES_ROW = "rules"
# Temporary tables of an update: the persons a write touched, the pairs to explain again, the
# keys (agreement, user, case, instant) whose follow-ups may change, and the facts the
# statement reads (those pairs and their possible anchors).
TOUCHED = "oversight_touched_persons"
DIRTY = "oversight_dirty_pairs"
SEEDS = "oversight_dirty_seeds"
SOURCE = "oversight_dirty_facts"
# The instants of SQLite are compared as text to the millisecond (``explain_sql._shift``):
# the windows that choose the facts to explain again are widened by this much (a superset).
MARGIN = timedelta(seconds=1)


def rules_json(rules: Rules) -> str:
    """The rules as canonical JSON (what the fingerprint hashes)."""
    return json.dumps(
        {
            "follow_up_seconds": rules.follow_up_window.total_seconds(),
            "bulk_results": rules.bulk_results,
            "sweep_queries": rules.sweep_queries,
            "sweep_seconds": rules.sweep_window.total_seconds(),
            "caseless_purposes": sorted(rules.caseless_purposes),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def rules_of(document: str) -> Rules:
    """The rules a ``rules_json`` document holds."""
    values = json.loads(document)
    return Rules(
        follow_up_window=timedelta(seconds=values["follow_up_seconds"]),
        bulk_results=values["bulk_results"],
        sweep_queries=values["sweep_queries"],
        sweep_window=timedelta(seconds=values["sweep_seconds"]),
        caseless_purposes=frozenset(values["caseless_purposes"]),
    )


def fingerprint(rules: Rules) -> str:
    """The SHA-256 of the rules' canonical JSON."""
    return hashlib.sha256(rules_json(rules).encode()).hexdigest()


def kept_rules(session: Session) -> Rules | None:
    """The rules the kept explanations follow, or None when none are kept."""
    row = session.get(ExplanationRules, RULES_ROW)
    return None if row is None else rules_of(row.rules)


def current(session: Session, rules: Rules) -> bool:
    """Whether the kept explanations follow ``rules`` (else a reader explains afresh)."""
    row = session.get(ExplanationRules, RULES_ROW)
    return row is not None and row.fingerprint == fingerprint(rules)


def maintain(session: Session, rules: Rules) -> Refreshed:
    """Keep the explanations under ``rules``: refresh the facts (which updates the kept rows)
    and, when no rows are kept or they follow other rules, explain every fact again."""
    refreshed = refresh(session)
    if not current(session, rules):
        rebuild(session, rules)
    return refreshed


def read(session: Session, selection: Selection, rules: Rules) -> Select[Any] | None:
    """The selection's pairs read from the kept explanations (``explain_sql.resolved``), the
    same rows and columns as ``explain_sql.explanations`` explains afresh, or None when a reader
    must explain afresh: no rows kept under ``rules``, or a selection by agency. The kept rows
    explain each agreement's accesses as on their own (a follow-up anchors on an access of the
    same agreement), as a selection of one agreement or of several (a cycle) does; a selection
    by agency explains its accesses together, whatever their agreements (and only the
    agency's, not the same user's under another unit), so its codes may differ and it is
    explained afresh. Read by the (agreement, instant) index."""
    if selection.agency_id is not None or (
        selection.agreement_id is None and selection.agreement_ids is None
    ):
        return None
    if not current(session, rules):
        return None
    k = EXPLAINED_PAIRS
    where = [k.c.at >= selection.start, k.c.at < selection.end]
    if selection.agreement_id is not None:
        where.append(k.c.agreement_id == selection.agreement_id)
    if selection.agreement_ids is not None:
        where.append(k.c.agreement_id.in_(sorted(selection.agreement_ids)))
    return sql.resolved(k, where)


def stop(session: Session) -> None:
    """Keep no explanation (the rows and the rules deleted)."""
    session.execute(EXPLAINED_PAIRS.delete())
    session.execute(EXPLANATION_RULES.delete())


def _everything() -> Selection:
    return Selection(
        start=datetime.min.replace(tzinfo=UTC),
        end=datetime.max.replace(tzinfo=UTC),
    )


def _agreements(session: Session) -> frozenset[int]:
    return frozenset(session.scalars(select(Agreement.id)))


def _lock_at_once(session: Session) -> bool:
    """Take the kept rows' exclusive lock if no one holds it (PostgreSQL), as the facts' bulk
    load does (``facts._lock_at_once``): a report reading them would otherwise wait behind the
    rebuild, and one that then asked for the watermark the refresh holds would deadlock."""
    try:
        with session.begin_nested():
            session.execute(
                text(f"LOCK TABLE {EXPLAINED_PAIRS.name} IN ACCESS EXCLUSIVE MODE NOWAIT")
            )
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


@contextmanager
def _emptied(session: Session) -> Iterator[None]:
    """The kept rows emptied for a rebuild, which inserts every row inside. On PostgreSQL a
    bulk load: the table truncated, its key and two indexes dropped while the rows go in and
    built from them after (a sort each, not a random leaf per row and per index; at 10M the
    rows written through them took 640 s, docs/benchmarks.md), with the sort memory of the
    facts' bulk load; when someone holds the table (a report reading it), its rows are deleted
    and written through the indexes kept. On SQLite (which keeps a table's key for life) the
    rows are deleted and written through the indexes, as before: dropping the two indexes was
    not shown to help there. Same rows either way."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or not _lock_at_once(session):
        connection.execute(EXPLAINED_PAIRS.delete())
        yield
        return
    connection.execute(text(f"TRUNCATE {EXPLAINED_PAIRS.name}"))
    indexes = sorted(EXPLAINED_PAIRS.indexes, key=lambda index: str(index.name))
    key = EXPLAINED_PAIRS.primary_key
    with local_settings(session, maintenance_work_mem=BULK_MEMORY):
        for index in indexes:
            connection.execute(DropIndex(index))
        connection.execute(DropConstraint(key))
        yield
        # Not isolated from the table (AddConstraint's default): a later CREATE TABLE in this
        # process (a new database's schema) would otherwise lose the key.
        connection.execute(AddConstraint(key, isolate_from_table=False))
        for index in indexes:
            connection.execute(CreateIndex(index))


def rebuild(session: Session, rules: Rules) -> None:
    """Explain every fact under ``rules`` into the kept rows, and store the rules. One
    statement over the whole store, each agreement explained as on its own (as
    ``explain.materialise``), with the whole store's memory on PostgreSQL; the rows written
    as a bulk load (``_emptied``)."""
    session.flush()
    row = session.get(ExplanationRules, RULES_ROW)
    if row is None:
        row = ExplanationRules(name=RULES_ROW)
        session.add(row)
    row.rules, row.fingerprint = rules_json(rules), fingerprint(rules)
    session.flush()
    dialect = session.get_bind().dialect.name
    everything = _everything()
    selection = Selection(
        start=everything.start, end=everything.end, agreement_ids=_agreements(session)
    )
    grants = purpose_grants(session, everything)
    facts = _cycle_facts(session, selection, rules) if dialect == "postgresql" else None
    pairs = sql.explanations(selection, rules, grants, dialect, facts)
    target = EXPLAINED_PAIRS
    with _emptied(session), whole_store_memory(session):
        session.execute(target.insert().from_select([c.name for c in target.columns], pairs))
    if facts is not None:
        session.connection().execute(text(f"DROP TABLE {CYCLE_FACTS}"))
    if dialect == "postgresql":
        session.execute(text(f"ANALYZE {target.name}"))


def top_fact(session: Session) -> int:
    """The highest fact id (the facts a refresh writes next are above it)."""
    return int(session.scalar(select(func.coalesce(func.max(AccessFact.id), 0))) or 0)


def _mark(session: Session, name: str) -> int:
    return int(session.scalar(select(FactsWatermark.size).where(FactsWatermark.name == name)) or 0)


def touched_persons(session: Session, named: bool) -> None:
    """Fill ``TOUCHED`` with the persons whose charge state at some access may have changed
    since the last refresh: the arrestees of the arrests the charge timeline is about to
    rebuild (a decision or an approved charge past its watermarks, an arrest a write of the
    new leaves names) and the persons the arrestee rows are about to rebuild (a new arrestee
    involvement, a person a write names, the arrestees of an arrest a write names). Read
    before those refreshes move their watermarks."""
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {TOUCHED}"))
    connection.execute(text(f"CREATE TEMPORARY TABLE {TOUCHED} (person_id INTEGER)"))
    written = f"UNION SELECT id FROM {NAMED} WHERE kind = 'a'" if named else ""  # noqa: S608
    arrests = f"""
        SELECT arrest_id FROM charging_decisions WHERE id > :seen_d
        UNION SELECT arrest_id FROM charges WHERE id > :seen_c
            AND stage = '{ChargeStage.APPROVED.value}'
        {written}
    """  # noqa: S608 - no caller input
    connection.execute(
        text(
            f"INSERT INTO {TOUCHED} (person_id) "  # noqa: S608 - no caller input
            f"SELECT person_id FROM involvements WHERE role = '{InvolvementRole.ARRESTEE.value}' "
            f"AND arrest_id IN ({arrests}) "
            f"UNION {arrestees_named_sql(NAMED if named else None)}"
        ),
        {
            "seen_d": _mark(session, TIMELINE_DECISIONS),
            "seen_c": _mark(session, TIMELINE_CHARGES),
            "inv": _mark(session, ARRESTEES_INVOLVEMENTS),
        },
    )


def _temp(session: Session, name: str, columns: str) -> Any:
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    connection.execute(text(f"CREATE TEMPORARY TABLE {name} ({columns})"))
    return table(name, *(column(c.split()[0]) for c in columns.split(", ")))


def _same(a: Any, b: Any) -> Any:
    """The rows of ``a`` and ``b`` name the same pair (entry, person)."""
    return and_(a.c.entry_id == b.c.entry_id, a.c.person_id == b.c.person_id)


def update(session: Session, rules: Rules, *, start: int, end: int, top: int) -> int:
    """Explain again, into the kept rows, every fact that the leaves [start, end) or the
    records' writes since the last refresh may have changed (module docstring), the new facts
    (ids above ``top``) first among them; delete the rows of shredded entries. ``TOUCHED``
    holds the persons the writes touched (``touched_persons``). The number of pairs
    explained."""
    dialect = session.get_bind().dialect.name
    connection = session.connection()
    f, kept = AccessFact.__table__, EXPLAINED_PAIRS
    dirty = _temp(session, DIRTY, "entry_id BIGINT, person_id INTEGER")
    seeds = _temp(
        session, SEEDS, "agreement_id INTEGER, user_id INTEGER, case_reference VARCHAR(200), at "
        + ("TIMESTAMP WITH TIME ZONE" if dialect == "postgresql" else "DATETIME"),
    )  # fmt: skip
    pair_columns = ["entry_id", "person_id"]
    # The new facts.
    connection.execute(
        dirty.insert().from_select(
            pair_columns, select(f.c.entry_id, f.c.person_id).where(f.c.id > top)
        )
    )
    # The facts of the touched persons (by the kept rows' person index).
    touched = table(TOUCHED, column("person_id"))
    connection.execute(
        dirty.insert().from_select(
            pair_columns,
            select(kept.c.entry_id, kept.c.person_id).where(
                kept.c.person_id.in_(select(touched.c.person_id))
            ),
        )
    )
    # The facts within the sweep window of an external read of the same user that is new in
    # these leaves or not integrated yet (the explanation counts those too).
    e = AuditEntry.__table__
    window = rules.sweep_window + MARGIN
    tail = text(by_actor.pending_sql(dialect)).columns(
        column("entry_id" if dialect == "postgresql" else "id", Integer)
    )
    leaves = select(AuditLeaf.entry_id).where(
        AuditLeaf.leaf_index >= start, AuditLeaf.leaf_index < end
    )
    external = [
        e.c.agreement_id.is_not(None),
        e.c.kind.in_((AuditKind.SEARCH.value, AuditKind.READ.value)),
    ]
    # Two branches (an OR of the two lists would read every entry).
    reads = union_all(
        select(e.c.user_id, e.c.at).where(*external, e.c.id.in_(leaves)),
        select(e.c.user_id, e.c.at).where(*external, e.c.id.in_(tail)),
    ).subquery("reads")
    connection.execute(
        dirty.insert().from_select(
            pair_columns,
            select(f.c.entry_id, f.c.person_id).select_from(
                reads.join(
                    f,
                    and_(
                        f.c.user_id == reads.c.user_id,
                        f.c.at >= sql._shift(reads.c.at, -window, dialect),
                        f.c.at <= sql._shift(reads.c.at, window, dialect),
                    ),
                )
            ),
        )
    )
    # The keys whose follow-ups may change: those of the pairs above and of shredded facts.
    seed_columns = ["agreement_id", "user_id", "case_reference", "at"]
    d = select(dirty.c.entry_id, dirty.c.person_id).distinct().subquery("d")
    connection.execute(
        seeds.insert().from_select(
            seed_columns,
            select(f.c.agreement_id, f.c.user_id, f.c.case_reference, f.c.at)
            .select_from(f.join(d, _same(d, f)))
            .where(f.c.case_reference.is_not(None)),
        )
    )
    bounds = {"lo": start, "hi": end}
    shredded_keys = (
        "INSERT INTO oversight_dirty_seeds (agreement_id, user_id, case_reference, at) "
        "SELECT agreement_id, user_id, case_reference, at FROM oversight_explained_pairs"
    )
    # Shreddings in the new leaves, and in the log's tail not integrated yet (the contents are
    # gone already: a recomputation leaves those facts out at once, anchors included).
    for entries in (None, by_actor.pending_sql(dialect)):
        connection.execute(text(_purge_sql(dialect, shredded_keys, entries)), bounds)
        purge = _purge_sql(dialect, "DELETE FROM oversight_explained_pairs", entries)
        connection.execute(text(purge), bounds)
    follow = rules.follow_up_window + MARGIN
    connection.execute(
        dirty.insert().from_select(
            pair_columns,
            select(f.c.entry_id, f.c.person_id).select_from(
                seeds.join(
                    f,
                    and_(
                        f.c.case_reference == seeds.c.case_reference,
                        f.c.at > seeds.c.at,
                        f.c.at <= sql._shift(seeds.c.at, follow, dialect),
                        f.c.user_id == seeds.c.user_id,
                        f.c.agreement_id == seeds.c.agreement_id,
                    ),
                )
            ),
        )
    )
    connection.execute(text(f"CREATE INDEX ix_{DIRTY} ON {DIRTY} (entry_id, person_id)"))
    if dialect == "postgresql":
        connection.execute(text(f"ANALYZE {DIRTY}"))
    # The facts to explain: the dirty pairs and their possible anchors (same agreement, user
    # and case, within the follow-up window before), not shredded.
    d = select(dirty.c.entry_id, dirty.c.person_id).distinct().subquery("d")
    mine = (
        select(f.c.id, f.c.agreement_id, f.c.user_id, f.c.case_reference, f.c.at)
        .select_from(f.join(d, _same(d, f)))
        .subquery("mine")
    )
    anchor = f.alias("anchor")
    anchors = select(anchor.c.id).select_from(
        mine.join(
            anchor,
            and_(
                anchor.c.case_reference == mine.c.case_reference,
                anchor.c.at < mine.c.at,
                anchor.c.at >= sql._shift(mine.c.at, -follow, dialect),
                anchor.c.user_id == mine.c.user_id,
                anchor.c.agreement_id == mine.c.agreement_id,
            ),
        )
    )
    source = _temporary(session, SOURCE, f.columns)
    alive = exists(
        select(AuditEntry.id).where(AuditEntry.id == f.c.entry_id, AuditEntry.content.is_not(None))
    )
    connection.execute(
        source.insert().from_select(
            [c.name for c in source.columns],
            select(f).where(f.c.id.in_(select(mine.c.id).union(anchors)), alive),
        )
    )
    # Their kept rows go; each is written again below unless its entry was shredded.
    connection.execute(
        kept.delete().where(
            kept.c.entry_id.in_(select(dirty.c.entry_id)),
            exists(select(literal(1)).where(_same(dirty, kept))),
        )
    )
    if dialect == "postgresql":
        connection.execute(text(f"ANALYZE {SOURCE}"))
    everything = _everything()
    selection = Selection(
        start=everything.start, end=everything.end, agreement_ids=_agreements(session)
    )
    grants = purpose_grants(session, everything)
    pairs = sql.explanations(
        selection, rules, grants, dialect, source, indexed_sweeps=True
    ).subquery("pairs")
    d = select(dirty.c.entry_id, dirty.c.person_id).distinct().subquery("d")
    chosen = select(pairs).select_from(pairs.join(d, _same(d, pairs)))
    result = connection.execute(kept.insert().from_select([c.name for c in kept.columns], chosen))
    count = max(int(getattr(result, "rowcount", 0) or 0), 0)
    for name in (DIRTY, SEEDS, SOURCE, TOUCHED):
        connection.execute(text(f"DROP TABLE {name}"))
    return count
