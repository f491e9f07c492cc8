"""The renewal-level oversight pass at scale: 10M audit entries, 1M persons (issue 13).

    .venv/bin/python bench/oversight.py [--quick] [--engine sqlite|postgresql]
        [--entries N] [--persons N] [--days N] [--keep-db PATH [--trim-kept]]
        [--incremental-only | --facts-kept] [--explanations-kept]

What runs, in one process, on one database (docs/benchmarks.md explains each figure):

1. Generate (or reuse, with ``--keep-db``) a log and records with set-based SQL only: a
   recursive CTE on SQLite, ``generate_series`` on PostgreSQL, ``INSERT ... SELECT`` in chunks
   of one million rows, no Python loop per row. Agencies, police and external users, one active
   agreement per external agency (purposes ``criminal-investigation`` with a case required and
   ``warrant-check``), persons with arrests, approved, pending (never charged) and declined
   charges, persons never arrested (witnesses), three canaries, then ``--entries`` audit entries
   spread over ``--days`` days: a quarter internal reads, some refusals, and external reads of
   every shape the explanation rules tell apart (a case's arrestee, follow-up name searches,
   warrant checks by SID, no case cited, bulk name searches, persons never charged, unknown
   cases, persons never arrested). Each entry has its canonical content (the JSON the facts
   refresh parses), its subjects and its leaf. **The entries are not signed and their
   commitments and leaf hashes are placeholders (32 zero bytes): the log is not Merkle-valid.**
   The oversight pass never reads a hash, only leaf indexes, contents and entries.
2. The baseline: the plain time to scan the same entries (every entry joined to its content,
   the bytes' lengths summed) in the same run.
3. The full pass: ``facts.refresh`` from leaf 0, the explanation of every pair of every
   agreement over the whole period (``explain.materialise``: once per cycle, into a temporary
   table), coverage in all and per agency, user, purpose and week (``explain_sql.coverage``),
   every detector registered in ``openpars.oversight.flags.DETECTORS`` when it runs
   (``run_detectors``, each timed), and the renewal report of every agreement
   (``report.build_report`` reading the cycle's explanations, timed). Digests of the stored
   flags and of the reports (``flags_sha256``, ``reports_sha256``) show two runs' results
   equal.
4. Incremental: one more day's entries are appended (the same generator), then the refresh
   (from its watermark), the explanation and coverage of that day, and the detectors over that
   day as the daily run judges it (``DetectionPeriod`` of the day: the day plus the history
   each detector needs, not the whole store).

A kept store whose log grew past its size (a run that appended its incremental day and stopped
before removing it) is refused with a message, or cut back to its size with ``--trim-kept``;
it is never regenerated in its place.

``--facts-kept`` runs step 3 over facts kept up to date, as the daily runs keep them (the facts
are maintained incrementally, like an index): they are first brought up to the log in their own
transaction (from leaf 0 on a fresh store; nothing on a kept store whose facts are current), and
the pass's own refresh then reads no leaf. The pass's ``total_s`` is then the renewal report a
stakeholder waits for; without it, the pass includes the rebuild of the facts from leaf 0.

``--explanations-kept`` keeps the explanations as the refresh maintains them
(``oversight/maintained.py``): after the facts, ``maintained.maintain`` in a transaction of its
own (``explanations_kept``: the from-scratch rebuild when none are kept, timed apart); then
the full pass over kept facts (implied) and, after it, the 20 renewal reports read from the
kept rows (``kept_reports``: each refreshes first, which keeps the rows of any new leaf, then
reads its agreement's rows by index), with the flags the pass stored: ``same_reports_as_full``
says their digest equals the full pass's. The incremental day's refresh then keeps them too.
With ``--incremental-only`` the kept reports run without the full pass (no flags stored, so no
digest to compare), then the day.

``--incremental-only`` skips step 3: the facts are brought up to the generated log (kept from
an earlier run with ``--keep-db``), then step 4 alone. Its flags digest differs from a full
run's: no earlier flag of the full pass is there to be found again.

Peak RSS is this process's (``resource.getrusage``): on SQLite the database engine runs in it,
and the pages of the file read through its memory map (up to 1 GiB by default) count;
PostgreSQL's server processes are not counted. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.db import Base, make_engine, make_unpooled_engine, schema_ddl
from openpars.models import load_all_models
from openpars.oversight import explain_sql as xsql
from openpars.oversight import facts, flags, maintained
from openpars.oversight.detection import DetectionPeriod
from openpars.oversight.explain import Explained, Period, materialise, rules_from
from openpars.oversight.explain_sql import Dimension, Rules, Selection
from openpars.oversight.report import build_report

PG_URL = os.environ.get(
    "OPENPARS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CHUNK = 1_000_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENCIES = 20  # external agencies, one agreement each
POLICE_USERS = 50
EXTERNAL_USERS = 2_000
CASE_PURPOSE = "criminal-investigation"
WARRANT_PURPOSE = "warrant-check"
CANARY_PERSONS = (11, 21, 31)
# Bump when the generated shape or the schema changes: a kept database is then regenerated.
GENERATOR = 3


# --- dialect pieces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings the generator needs that differ between the engines."""

    name: str

    def series(self) -> tuple[str, str]:
        """(prefix, FROM item): integers i in [:lo, :hi]."""
        if self.name == "sqlite":
            return (
                "WITH RECURSIVE s(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM s WHERE i < :hi) ",
                "s",
            )
        return "", "generate_series(CAST(:lo AS BIGINT), CAST(:hi AS BIGINT)) AS s(i)"

    def pad(self, expr: str, width: int) -> str:
        if self.name == "sqlite":
            return f"printf('%0{width}d', {expr})"
        return f"lpad(CAST({expr} AS TEXT), {width}, '0')"

    def stamp(self, seconds: str) -> str:
        """The stored instant T0 + seconds (whole seconds)."""
        if self.name == "sqlite":
            start = f"{T0:%Y-%m-%d %H:%M:%S}"
            return f"(datetime('{start}', '+' || ({seconds}) || ' seconds') || '.000000')"
        return f"(TIMESTAMPTZ '{T0.isoformat()}' + make_interval(secs => {seconds}))"

    def iso(self, seconds: str) -> str:
        """The same instant as the canonical content writes it (ISO 8601, microseconds)."""
        if self.name == "sqlite":
            return (
                f"(strftime('%Y-%m-%dT%H:%M:%S', '{T0:%Y-%m-%d %H:%M:%S}', '+' || ({seconds}) || "
                "' seconds') || '.000000+00:00')"
            )
        return (
            f"(to_char((TIMESTAMPTZ '{T0.isoformat()}' + make_interval(secs => {seconds})) AT "
            "TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00')"
        )

    def day(self, days: str) -> str:
        if self.name == "sqlite":
            return f"date('1960-01-01', '+' || ({days}) || ' days')"
        return f"(DATE '1960-01-01' + CAST({days} AS INTEGER))"

    def blob(self, expr: str) -> str:
        return f"CAST({expr} AS BLOB)" if self.name == "sqlite" else f"convert_to({expr}, 'UTF8')"

    @property
    def zeros(self) -> str:
        return "zeroblob(32)" if self.name == "sqlite" else "decode(repeat('00', 32), 'hex')"

    def ids(self, json_array: str) -> str:
        """An entry's subject ids column from the text of a JSON array of integers."""
        if self.name == "sqlite":
            return f"NULLIF({json_array}, '[]')"
        return f"CAST(translate(NULLIF({json_array}, '[]'), '[]', '{{}}') AS bigint[])"

    def small(self, n: int) -> str:
        """FROM item: integers k in [0, n)."""
        if self.name == "sqlite":
            values = ", ".join(f"({k})" for k in range(n))
            return f"(SELECT column1 AS k FROM (VALUES {values})) AS ks"
        return f"generate_series(0, {n - 1}) AS ks(k)"


# --- the generated shape ----------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Sizes of a generated dataset."""

    persons: int
    entries: int
    days: int

    @property
    def seconds_per_entry(self) -> float:
        return self.days * 86_400 / self.entries

    @property
    def per_day(self) -> int:
        return max(1, self.entries // self.days)


def _entry_columns(d: Dialect, shape: Shape) -> dict[str, str]:
    """SQL expressions of entry i's every field (deterministic in i)."""
    p_span = shape.persons - 20
    base = f"(1 + (i * 7919) % {p_span})"
    # An arrestee: persons whose id ends in 0 are never arrested (the witnesses).
    arrestee = f"({base} - CASE WHEN {base} % 10 = 0 THEN 1 ELSE 0 END)"
    sevens = max(2, shape.persons // 7 - 2)
    q = f"(7 * (1 + i % {sevens}))"
    never_charged = f"({q} + CASE WHEN {q} % 10 = 0 THEN 7 ELSE 0 END)"
    tens = max(2, shape.persons // 10 - 2)
    never_arrested = f"(10 * (1 + i % {tens}))"
    m = "(i % 100)"
    person = (
        f"CASE WHEN {m} IN (96, 97) THEN {never_charged} WHEN {m} = 99 THEN {never_arrested} "
        f"ELSE {arrestee} END"
    )
    count = (
        f"CASE WHEN {m} < 27 THEN 0 WHEN {m} BETWEEN 80 AND 84 THEN 2 "
        f"WHEN {m} IN (94, 95) THEN 12 ELSE 1 END"
    )
    user = (
        f"CASE WHEN {m} < 25 THEN 1 + i % {POLICE_USERS} "
        f"ELSE {POLICE_USERS + 1} + (i * 31) % {EXTERNAL_USERS} END"
    )
    agency = f"CASE WHEN {m} < 25 THEN 1 ELSE 2 + ({user}) % {AGENCIES} END"
    agreement = f"CASE WHEN {m} < 25 THEN NULL ELSE 1 + ({user}) % {AGENCIES} END"
    seconds = f"CAST((i - 1) * {shape.seconds_per_entry!r} AS INTEGER)"
    kind = (
        f"CASE WHEN {m} IN (25, 26) THEN 'refused' "
        f"WHEN {m} BETWEEN 27 AND 79 OR {m} IN (96, 97, 98) THEN 'read' ELSE 'search' END"
    )
    action = f"CASE WHEN {kind} = 'read' THEN 'person.get' ELSE 'person.search' END"
    outcome = f"CASE WHEN {m} IN (25, 26) THEN 'refused' ELSE 'ok' END"
    otn = f"'N' || {d.pad(person, 9)}"
    case_ = (
        f"CASE WHEN {m} BETWEEN 27 AND 84 OR {m} IN (94, 95, 96, 97) THEN '\"' || {otn} || '\"' "
        f"WHEN {m} = 98 THEN '\"UNKNOWN-' || i || '\"' ELSE 'null' END"
    )
    purpose = (
        f"CASE WHEN {m} < 25 THEN 'null' WHEN {m} BETWEEN 85 AND 93 OR {m} = 99 "
        f"THEN '\"{WARRANT_PURPOSE}\"' ELSE '\"{CASE_PURPOSE}\"' END"
    )
    name = (
        f"'\"Family' || {d.pad(f'({person}) % 5000', 4)} || ' Given' || "
        f"{d.pad(f'({person}) % 700', 3)} || '\"'"
    )
    query = (
        f"CASE WHEN {m} BETWEEN 85 AND 89 THEN '{{\"sid\":\"S' || {d.pad(person, 9)} || '\"}}' "
        f"WHEN {kind} = 'read' THEN '{{\"person_id\":' || ({person}) || '}}' "
        f"ELSE '{{\"name\":' || {name} || '}}' END"
    )
    ids = " || ',' || ".join(f"(({person}) + {k})" for k in range(12))
    persons_json = (
        f"CASE WHEN {m} < 27 THEN '[]' WHEN {m} BETWEEN 80 AND 84 "
        f"THEN '[' || ({person}) || ',' || (({person}) + 1) || ']' "
        f"WHEN {m} IN (94, 95) THEN '[' || {ids} || ']' ELSE '[' || ({person}) || ']' END"
    )
    agreement_json = f"COALESCE(CAST(({agreement}) AS TEXT), 'null')"
    version_json = f"CASE WHEN {m} < 25 THEN 'null' ELSE '1' END"
    error = f"CASE WHEN {m} IN (25, 26) THEN '\"rate_limited\"' ELSE 'null' END"
    decision = (
        "'{\"allowed\":' || CASE WHEN " + m + " IN (25, 26) THEN 'false' ELSE 'true' END || '}'"
    )
    content = (
        '\'{"action":"\' || ' + action + ' || \'","agency_id":\' || (' + agency + ") || "
        "',\"agreement_id\":' || "
        + agreement_json
        + " || ',\"agreement_version\":' || "
        + version_json
        + ' || \',"arrest_ids":[],"at":"\' || '
        + d.iso(seconds)
        + " || "
        '\'","error_code":\' || ' + error + ' || \',"kind":"\' || ' + kind + " || "
        '\'","outcome":"\' || '
        + outcome
        + ' || \'","params":{"case_number":\' || '
        + case_
        + " || ',\"decision\":' || "
        + decision
        + ' || \',"on_behalf_of":null,'
        '"purpose":\' || ' + purpose + " || ',\"query\":' || " + query + " || '},"
        '"person_ids":\' || ' + persons_json + ' || \',"source_ip":"10.20.\' || '
        "((" + user + ") % 250) || '.' || (i % 250) || '\",\"user_id\":' || (" + user + ") || "
        '\',"username":"user\' || (' + user + ") || '\"}'"
    )
    # A colon before a name is a bind parameter to text(): the JSON keys' colons are escaped.
    content = content.replace('":', '"\\:')
    return {
        "at": d.stamp(seconds),
        "kind": kind,
        "action": action,
        "outcome": outcome,
        "user_id": user,
        "agency_id": agency,
        "agreement_id": agreement,
        "person": person,
        "count": count,
        "person_ids": d.ids(persons_json),
        "content": content,
    }


def _statements(d: Dialect, shape: Shape) -> dict[str, str]:
    """The INSERT ... SELECT of each generated table, over i in [:lo, :hi]."""
    prefix, src = d.series()
    e = _entry_columns(d, shape)
    arrested = "'2024-01-01 00:00:00.000000'" if d.name == "sqlite" else "TIMESTAMPTZ '2024-01-01'"
    if d.name == "sqlite":
        arrest_at = "(datetime('2024-01-01', '+' || (i % 700) || ' days') || '.000000')"
        charged_at = "(datetime('2024-01-01', '+' || (i % 700 + 1) || ' days') || '.000000')"
    else:
        arrest_at = f"({arrested} + make_interval(days => CAST(i % 700 AS INTEGER)))"
        charged_at = f"({arrested} + make_interval(days => CAST(i % 700 + 1 AS INTEGER)))"
    now = "'2026-01-01 00:00:00.000000'" if d.name == "sqlite" else "TIMESTAMPTZ '2026-01-01'"
    pending = "(i % 7 = 0 AND i % 13 <> 0)"
    declined = "(i % 13 = 0)"
    return {
        "persons": prefix
        + "INSERT INTO persons (id, family_name, given_name, middle_name, name_key, birth_date, "
        "sex, race, address, phone, place_of_birth, citizenship, sid, fbi_number, version, "
        "created_at, updated_at) SELECT i, 'Family' || "
        + d.pad("i % 5000", 4)
        + ", 'Given' || "
        + d.pad("i % 700", 3)
        + ", NULL, 'family' || "
        + d.pad("i % 5000", 4)
        + " || ' given' || "
        + d.pad("i % 700", 3)
        + ", "
        + d.day("i % 15000")
        + ", CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END, "
        "CASE i % 5 WHEN 0 THEN 'W' WHEN 1 THEN 'B' WHEN 2 THEN 'A' WHEN 3 THEN 'B' ELSE 'U' END, "
        "(i % 9000) || ' Market St', NULL, "
        "CASE WHEN i % 20 = 3 THEN 'Santo Domingo, DO' ELSE 'Philadelphia, PA' END, "
        "CASE WHEN i % 20 = 3 THEN 'DO' ELSE 'US' END, 'S' || "
        + d.pad("i", 9)
        + ", NULL, 1, "
        + now
        + ", "
        + now
        + f" FROM {src}",
        # One arrest per person except those whose id ends in 0 (never arrested).
        "arrests": prefix
        + "INSERT INTO arrests (id, otn, incident_number, ori, arresting_officer, arrested_at, "
        "location, arrest_type, narrative, state, docket_number, source_agency_id, report_id, "
        "version, created_at, updated_at) SELECT i, 'N' || "
        + d.pad("i", 9)
        + ", '2024' || "
        + d.pad("i", 8)
        + ", 'PAPEP0000', 'Officer ' || (i % 3000), "
        + arrest_at
        + ", NULL, 'on_view', NULL, "
        f"CASE WHEN {pending} THEN 'entered' WHEN {declined} THEN 'declined' ELSE 'released' END, "
        f"CASE WHEN i % 2 = 0 AND NOT {pending} AND NOT {declined} THEN 'MC-51-CR-' || "
        + d.pad("i", 8)
        + " ELSE NULL END, 1, 'PPD-' || i, 1, "
        + now
        + ", "
        + now
        + f" FROM {src} WHERE i % 10 <> 0",
        "involvements": prefix + "INSERT INTO involvements (arrest_id, person_id, role, juvenile) "
        "SELECT CASE WHEN i % 10 = 0 THEN i - 1 ELSE i END, i, "
        f"CASE WHEN i % 10 = 0 THEN 'witness' ELSE 'arrestee' END, false FROM {src}",
        "charges": prefix
        + "INSERT INTO charges (arrest_id, stage, revision, sequence, statute, description, "
        "grade, counts, created_at) SELECT i, st.stage, 1, 1, '18 § 3921', 'Theft', 'M1', 1, "
        + charged_at
        + f" FROM {src}, (SELECT 'recommended' AS stage UNION ALL SELECT 'approved') AS st "
        f"WHERE i % 10 <> 0 AND (st.stage = 'recommended' OR NOT ({pending} OR {declined}))",
        "charging_decisions": prefix
        + "INSERT INTO charging_decisions (arrest_id, outcome, reason, decided_at) SELECT i, "
        f"CASE WHEN {declined} THEN 'declined' ELSE 'approved' END, NULL, "
        + charged_at
        + f" FROM {src} WHERE i % 10 <> 0 AND NOT {pending}",
        "audit_entries": prefix
        + "INSERT INTO audit_entries (id, at, kind, action, outcome, user_id, agency_id, "
        "agreement_id, commitment, person_ids, salt, content) SELECT i, "
        f"{e['at']}, {e['kind']}, {e['action']}, {e['outcome']}, {e['user_id']}, "
        f"{e['agency_id']}, {e['agreement_id']}, {d.zeros}, {e['person_ids']}, {d.zeros}, "
        f"{d.blob(e['content'])} FROM {src}",
        "audit_leaves": prefix
        + f"INSERT INTO audit_leaves (leaf_index, entry_id, leaf_hash) SELECT i - 1, i, "
        f"{d.zeros} FROM {src}",
        # Every generated entry has its leaf, so it is in the subject index too (what the
        # integrator would have written: audit.repository.index_subjects).
        "audit_person_entries": prefix
        + f"INSERT INTO audit_person_entries (person_id, entry_id) SELECT ({e['person']}) + ks.k, "
        f"i FROM {src}, {d.small(12)} WHERE ks.k < ({e['count']})",
        # And in the index by user and by agency (audit.by_actor.index_actors), from the
        # entries just written, sorted as the integrator writes a batch.
        "audit_user_entries": "INSERT INTO audit_user_entries (user_id, at, entry_id) "
        "SELECT user_id, at, id FROM audit_entries WHERE id BETWEEN :lo AND :hi "
        "AND user_id IS NOT NULL ORDER BY 1, 2, 3",
        "audit_agency_entries": "INSERT INTO audit_agency_entries (agency_id, at, entry_id) "
        "SELECT agency_id, at, id FROM audit_entries WHERE id BETWEEN :lo AND :hi "
        "AND agency_id IS NOT NULL ORDER BY 1, 2, 3",
    }


# --- the database -----------------------------------------------------------------------------


@contextlib.contextmanager
def database(engine_name: str, keep: Path | None) -> Iterator[str]:
    """A database URL: the kept SQLite file or PostgreSQL database, or a throwaway one."""
    if engine_name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
            path = keep if keep is not None else Path(tmp) / "oversight.db"
            yield f"sqlite:///{path}"
        return
    name = keep.name if keep is not None else f"openpars_bench_oversight_{os.getpid()}"
    admin = make_unpooled_engine(PG_URL)
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if found.first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        if keep is None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_external"')
        admin.dispose()


def _fingerprint(shape: Shape) -> str:
    return f"g{GENERATOR}/p{shape.persons}/e{shape.entries}/d{shape.days}"


class GrownStore(Exception):
    """A kept database of this shape whose log grew past its generated size."""


def _kept(engine: Engine, shape: Shape, *, trim: bool = False) -> bool:
    """A kept database holds this shape as generated: it is reused. A log that grew past the
    shape (an earlier run appended its incremental day and stopped before removing it) is
    refused (``GrownStore``), or with ``trim`` cut back to the generated entries: never
    regenerated behind the caller's back (15 minutes of both CPUs at 10M)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_meta (fingerprint TEXT)")
        kept = conn.exec_driver_sql("SELECT fingerprint FROM bench_meta").scalar()
        if kept != _fingerprint(shape):
            return False
        size = conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM audit_entries").scalar()
    if size is not None and size > shape.entries:
        if not trim:
            raise GrownStore(
                f"the kept database holds {size:,} audit entries, past the {shape.entries:,} "
                "it was generated with: an earlier run appended its incremental day and "
                "stopped before removing it. Rerun with --trim-kept to remove the entries "
                f"past {shape.entries:,} (seconds), or drop the database to generate it again."
            )
        _drop_entries_from(engine, shape.entries + 1)
        return True
    return size == shape.entries


def _reset(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


def _world(session: Session, d: Dialect) -> None:
    """Agencies, users, agreements and their versions: a few hundred rows, plain inserts."""
    now = "'2025-12-01 00:00:00.000000'" if d.name == "sqlite" else "TIMESTAMPTZ '2025-12-01'"
    until = "'2027-12-01 00:00:00.000000'" if d.name == "sqlite" else "TIMESTAMPTZ '2027-12-01'"
    session.execute(
        text(
            "INSERT INTO agencies (id, name, ori, kind, parent_id, created_at) VALUES "
            f"(1, 'Philadelphia Police Department', 'PAPEP0000', 'police', NULL, {now})"
        )
    )
    for a in range(AGENCIES):
        session.execute(
            text(
                "INSERT INTO agencies (id, name, ori, kind, parent_id, created_at) VALUES "
                f"(:id, :name, NULL, 'external', NULL, {now})"
            ),
            {"id": 2 + a, "name": f"External agency {a + 1}"},
        )
    users = [
        {"id": u, "agency": 1 if u <= POLICE_USERS else 2 + u % AGENCIES}
        for u in range(1, POLICE_USERS + EXTERNAL_USERS + 1)
    ]
    session.execute(
        text(
            "INSERT INTO users (id, username, display_name, agency_id, is_active, created_at) "
            f"VALUES (:id, 'user' || :id, 'User ' || :id, :agency, true, {now})"
        ),
        users,
    )
    scope = {
        "purposes": [
            {"purpose": CASE_PURPOSE, "case_reference_required": True},
            {"purpose": WARRANT_PURPOSE, "case_reference_required": False},
        ]
    }
    for a in range(AGENCIES):
        session.execute(
            text(
                "INSERT INTO agreements (id, name, grantee_agency_id, status, current_version, "
                "active_version, in_force_from, in_force_until, created_at, updated_at) VALUES "
                f"(:id, :name, :agency, 'active', 1, 1, {now}, {until}, {now}, {now})"
            ),
            {"id": a + 1, "name": f"Agreement {a + 1}", "agency": a + 2},
        )
        session.execute(
            text(
                "INSERT INTO agreement_versions (agreement_id, version, content, content_hash, "
                "effective_at, expires_at, created_by, created_at, reason, mask_key) VALUES "
                f"(:id, 1, :content, :hash, {now}, {until}, 'bench', {now}, 'bench', :key)"
            ),
            {
                "id": a + 1,
                "content": json.dumps({"name": f"Agreement {a + 1}", "scope": scope}),
                "hash": f"{a + 1:064d}",
                "key": bytes(32),
            },
        )


def _triggers_off(conn: Any, dialect: str) -> None:
    """Bulk load without the row triggers (visibility bookkeeping, canary trip): they are
    created again, as the schema makes them, once the rows are in."""
    if dialect == "postgresql":
        conn.exec_driver_sql("SET session_replication_role = replica")
        return
    names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()
    for (name,) in names:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')


def _triggers_on(conn: Any, dialect: str) -> None:
    if dialect == "postgresql":
        conn.exec_driver_sql("SET session_replication_role = origin")
        return
    for statement in schema_ddl("sqlite"):
        conn.exec_driver_sql(statement)


def _insert_range(
    engine: Engine, statements: dict[str, str], tables: list[str], lo: int, hi: int
) -> None:
    with engine.begin() as conn:
        _triggers_off(conn, engine.dialect.name)
        for table in tables:
            for start in range(lo, hi + 1, CHUNK):
                bounds = {"lo": start, "hi": min(hi, start + CHUNK - 1)}
                conn.execute(text(statements[table]), bounds)
        _triggers_on(conn, engine.dialect.name)


def _drop_entries_from(engine: Engine, lo: int) -> None:
    """Remove the entries from ``lo`` on (the bench's own incremental day, so a kept database
    is reused as generated): the append-only triggers are lifted for this delete alone."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # Outside a transaction (SQLite ignores it inside one): every deleted entry would
            # otherwise scan the tables that reference entries without an index (minutes at 1M).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        with conn.begin():
            _drop_day(conn, lo)
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def _drop_day(conn: Any, lo: int) -> None:
    _triggers_off(conn, conn.dialect.name)
    # The day's own flags (a daily run flags the day) name its entries.
    # The subject index by its key (person first), before the entries that name the persons.
    named = (
        "SELECT CAST(s.value AS INTEGER) FROM audit_entries e, json_each(e.person_ids) s "
        "WHERE e.id >= :lo"
        if conn.dialect.name == "sqlite"
        else "SELECT unnest(person_ids) FROM audit_entries WHERE id >= :lo"
    )
    conn.execute(
        text(f"DELETE FROM audit_person_entries WHERE person_id IN ({named}) AND entry_id >= :lo"),
        {"lo": lo},
    )
    for table in (
        "oversight_flag_entries",
        "audit_user_entries",
        "audit_agency_entries",
        "audit_leaves",
    ):
        conn.execute(text(f"DELETE FROM {table} WHERE entry_id >= :lo"), {"lo": lo})
    dialect = conn.dialect.name
    day = facts.day_hour(dialect)[0]
    first_day = conn.execute(
        text(f"SELECT MIN({day}) FROM audit_entries e WHERE e.id >= :lo"), {"lo": lo}
    ).scalar()
    read = conn.execute(
        text("SELECT size FROM oversight_watermarks WHERE name = :w"), {"w": facts.WATERMARK}
    ).scalar()
    conn.execute(text("DELETE FROM audit_entries WHERE id >= :lo"), {"lo": lo})
    # The day's facts too, and the watermark back to the generated log (entry i is leaf i - 1),
    # so that an incremental-only run reuses the facts of the log as generated.
    for table in (
        "oversight_access_facts",
        "oversight_access_queries",
        "oversight_access_refusals",
    ):
        conn.execute(text(f"DELETE FROM {table} WHERE entry_id >= :lo"), {"lo": lo})
    # The kept explanations of the log as generated are not those of the day's removal (the
    # day's reads counted in the sweeps of the accesses before it): none kept, the next run
    # that keeps them explains everything again.
    conn.execute(text("DELETE FROM oversight_explained_pairs"))
    conn.execute(text("DELETE FROM oversight_explanation_rules"))
    conn.execute(
        text("UPDATE oversight_watermarks SET size = :n WHERE name = :w AND size > :n"),
        {"n": lo - 1, "w": facts.WATERMARK},
    )
    if first_day is not None and read is not None and int(read) > lo - 1:
        # The per-day rows of the dropped entries' days, counted again from the leaves kept.
        conn.execute(text("DELETE FROM oversight_user_days WHERE day >= :d"), {"d": first_day})
        since = conn.execute(
            text(
                f"SELECT MIN(l.leaf_index) FROM audit_leaves l JOIN audit_entries e "
                f"ON e.id = l.entry_id WHERE {day} >= :d"
            ),
            {"d": first_day},
        ).scalar()
        if since is not None:
            conn.execute(text(f"DROP TABLE IF EXISTS {facts.STAGED}"))
            conn.execute(text(facts.stage_sql(dialect)), {"lo": since, "hi": lo - 1})
            conn.execute(text(facts.user_days_sql(dialect, merge=True)))
            conn.execute(text(f"DROP TABLE {facts.STAGED}"))
    _triggers_on(conn, conn.dialect.name)


ENTRY_TABLES = [
    "audit_entries",
    "audit_leaves",
    "audit_person_entries",
    "audit_user_entries",
    "audit_agency_entries",
]
RECORD_TABLES = ["persons", "arrests", "involvements", "charges", "charging_decisions"]


def generate(engine: Engine, shape: Shape) -> dict[str, float]:
    """Create the schema and generate the dataset; seconds per step."""
    d = Dialect(engine.dialect.name)
    statements = _statements(d, shape)
    seconds: dict[str, float] = {}
    _reset(engine)
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        _world(session, d)
    _insert_range(engine, statements, RECORD_TABLES, 1, shape.persons)
    with engine.begin() as conn:
        conn.execute(
            text(
                # Planted by one police user and confirmed by another (the arrest is the
                # generated one: the reviewed intake document is not needed here).
                "INSERT INTO oversight_canaries (person_id, arrest_id, label, arrest, "
                "planted_by_id, planted_at, confirmed_by_id, confirmed_at) "
                "VALUES (:p, :p, :label, :doc, 1, :at, 2, :at)"
            ),
            [
                {"p": p, "label": f"canary {p}", "doc": "{}", "at": T0 - timedelta(days=30)}
                for p in CANARY_PERSONS
            ],
        )
    seconds["records"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    _insert_range(engine, statements, ENTRY_TABLES, 1, shape.entries)
    seconds["entries"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        # A long-lived store is vacuumed by autovacuum: the visibility map lets index-only
        # scans (the contents' primary key the readers probe) skip the heap.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_meta (fingerprint TEXT)")
        conn.exec_driver_sql("DELETE FROM bench_meta")
        conn.execute(text("INSERT INTO bench_meta VALUES (:f)"), {"f": _fingerprint(shape)})
    seconds["vacuum_analyze"] = round(time.perf_counter() - started, 2)
    return seconds


def append_day(engine: Engine, shape: Shape) -> tuple[int, int]:
    """One more day's entries, by the same generator; their id range."""
    d = Dialect(engine.dialect.name)
    lo, hi = shape.entries + 1, shape.entries + shape.per_day
    _insert_range(engine, _statements(d, shape), ENTRY_TABLES, lo, hi)
    return lo, hi


# --- the pass ---------------------------------------------------------------------------------


def _timed(figures: dict[str, Any], key: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    figures[key] = round(time.perf_counter() - started, 3)
    return result


def baseline_scan(engine: Engine, lo: int, hi: int) -> dict[str, Any]:
    """The plain time to read the same entries: every entry with its content, bytes counted."""
    figures: dict[str, Any] = {}
    with engine.connect() as conn:
        row = _timed(
            figures,
            "seconds",
            lambda: conn.execute(
                text(
                    "SELECT COUNT(*), SUM(LENGTH(e.content)) FROM audit_entries e "
                    "WHERE e.id BETWEEN :lo AND :hi AND e.content IS NOT NULL"
                ),
                {"lo": lo, "hi": hi},
            ).one(),
        )
    figures["entries"], figures["bytes"] = int(row[0]), int(row[1] or 0)
    return figures


def _explain_and_cover(
    session: Session, period: Selection, rules: Rules, figures: dict[str, Any]
) -> Explained:
    """Every pair's code, agreement by agreement (as a renewal report asks, through the
    agreement's index), materialised once (``explain.materialise``); coverage in all and by
    each dimension from it. The same table is the renewal reports' pairs (``_report``)."""
    from openpars.agreements.models import Agreement

    dialect = session.get_bind().dialect.name
    agreements = list(session.scalars(select(Agreement.id).order_by(Agreement.id)))
    started = time.perf_counter()
    # The pass refreshed the facts up front (``oversight_pass``): once, not once per stage.
    cycle = materialise(
        session,
        start=period.start,
        end=period.end,
        agreement_ids=agreements,
        rules=rules,
        refreshed=True,
    )
    figures["explanations_s"] = round(time.perf_counter() - started, 3)
    figures["agreements"] = len(agreements)
    table = cycle.table
    figures["pairs"] = session.execute(select(func.count()).select_from(table)).scalar_one()
    stored = select(table)
    started = time.perf_counter()
    # By position: key, pairs, explained, never charged, then each reason in Reason's order.
    total = session.execute(xsql.coverage(stored, None, dialect)).one()
    figures["explained"] = int(total[2] or 0)
    figures["never_charged"] = int(total[3] or 0)
    figures["reasons"] = {r.value: int(n or 0) for r, n in zip(xsql.Reason, total[4:], strict=True)}
    for by in Dimension:
        rows = session.execute(xsql.coverage(stored, by, dialect)).all()
        figures[f"coverage_rows_{by.value}"] = len(rows)
    figures["coverage_s"] = round(time.perf_counter() - started, 3)
    return cycle


def _detectors(session: Session, figures: dict[str, Any], period: DetectionPeriod | None) -> None:
    """Every registered detector, timed by name: over the whole store (``period`` None, as the
    full pass judges everything) or over one period (the incremental day, as the daily run
    ``openpars oversight detect --from D --to D`` judges it: the day plus the history each
    detector needs)."""
    timings: dict[str, float] = {}
    created = 0
    figures["detectors_period"] = "everything" if period is None else period.label()
    for detector in flags.DETECTORS:
        started = time.perf_counter()
        # Refreshed once up front by the pass (each call would otherwise refresh again).
        created += len(flags.run_detectors(session, (detector,), period, refreshed=True))
        timings[getattr(detector, "__name__", repr(detector))] = round(
            time.perf_counter() - started, 3
        )
    figures["detectors_s"] = timings
    figures["flags_created"] = created
    figures["flags_sha256"] = _flags_digest(session)


def _flags_digest(session: Session) -> str:
    """Every stored flag (detector, key, rule, threshold, subjects, instant) with the count and
    sum of its entries' ids: equal digests, equal findings."""
    rows = session.execute(
        text(
            "SELECT f.detector, f.dedupe_key, f.rule, f.threshold, f.subject_user_id, "
            "f.subject_agency_id, f.subject_agreement_id, f.raised_at, "
            "(SELECT COUNT(*) FROM oversight_flag_entries e WHERE e.flag_id = f.id), "
            "(SELECT SUM(e.entry_id) FROM oversight_flag_entries e WHERE e.flag_id = f.id) "
            "FROM oversight_flags f ORDER BY f.detector, f.dedupe_key"
        )
    ).all()
    return hashlib.sha256(json.dumps([[str(c) for c in r] for r in rows]).encode()).hexdigest()


def _report(
    session: Session,
    selection: Selection,
    cycle: Explained | None,
    figures: dict[str, Any],
    *,
    rules: Rules | None = None,
) -> None:
    """The renewal report of every agreement over the pass's period, as a renewal cycle asks
    (``report.build_report``, the site's default rules): its own SQL (``report_sql``) counts
    and lists the pairs the cycle explained once (``cycle``), the queries and refusals, and
    reads the detectors' flags."""
    from openpars.agreements.models import Agreement

    first, last = selection.start.date(), (selection.end - timedelta(seconds=1)).date()
    if first > datetime.now(UTC).date():
        figures["report"] = f"not run: the period starts {first}, after today on this clock"
        return
    rules = cycle.rules if cycle is not None else rules
    assert rules is not None
    timings: dict[int, float] = {}
    digest = hashlib.sha256()
    pairs = 0
    for agreement in session.scalars(select(Agreement).order_by(Agreement.id)):
        started = time.perf_counter()
        document = build_report(
            session,
            agreement=agreement,
            period=Period(start=first, end=last, agreement_id=agreement.id),
            rules=rules,
            cycle=cycle,
        )
        timings[agreement.id] = round(time.perf_counter() - started, 3)
        pairs += next(f.value for f in document.figures if f.key == "pairs")
        dump = document.model_dump(mode="json", exclude={"generated_at"})
        for flag in dump["flags"]:
            # A flag's id (and the links naming it) is a sequence's next value: PostgreSQL's
            # does not restart when the bench deletes the flags of an earlier run.
            for key in ("id", "figure", "entries_path"):
                flag.pop(key)
        digest.update(json.dumps(dump, sort_keys=True).encode())
    figures["report_s"] = round(sum(timings.values()), 3)
    figures["report_slowest_s"] = max(timings.values(), default=0.0)
    figures["report_agreements"] = len(timings)
    figures["report_pairs"] = pairs
    # Every document but its generation instant: equal digests, equal reports (before and
    # after a change to how they are computed).
    figures["reports_sha256"] = digest.hexdigest()


def oversight_pass(engine: Engine, selection: Selection, *, daily: bool = False) -> dict[str, Any]:
    """Refresh (its own transaction, committed), then explanations, coverage, detectors (and
    the report) in a second one. The full pass judges the whole store; a ``daily`` pass judges
    the selection's day only. The refresh commits before the rest so that a bulk load's
    exclusive locks on the facts (``facts._bulk_load``) last the load, not the whole pass; the
    pass's reports stay those of one log size (each counts the leaves below the size its
    cycle explained, ``explain.Explained.size``)."""
    figures: dict[str, Any] = {}
    started, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        refreshed = _timed(figures, "refresh_s", lambda: facts.refresh(session))
        figures["leaves_read"] = refreshed.end - refreshed.start
        figures["facts"] = refreshed.facts
        session.commit()
        cycle = _explain_and_cover(session, selection, rules_from(Settings()), figures)
        period = DetectionPeriod(start=selection.start, end=selection.end) if daily else None
        _detectors(session, figures, period)
        _report(session, selection, cycle, figures)
        cycle.drop(session)
        figures["total_s"] = round(time.perf_counter() - started, 3)
        # This process's CPU (on SQLite the engine's too; PostgreSQL's server is not counted).
        figures["cpu_s"] = round(time.process_time() - cpu, 3)
        session.commit()
    return figures


def _keep_explanations(engine: Engine) -> dict[str, Any]:
    """Keep the explanations under the site's rules (``maintained.maintain``) in a transaction
    of their own (committed): from scratch when none are kept (the rebuild, timed apart),
    nothing when they are current."""
    with Session(engine) as session:
        started, cpu = time.perf_counter(), time.process_time()
        rules = rules_from(Settings())
        rebuilt = not maintained.current(session, rules)
        maintained.maintain(session, rules)
        figures = {
            "rebuilt": rebuilt,
            "seconds": round(time.perf_counter() - started, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "pairs": session.execute(
                select(func.count()).select_from(facts.EXPLAINED_PAIRS)
            ).scalar_one(),
        }
        session.commit()
    return figures


def kept_reports(engine: Engine, selection: Selection) -> dict[str, Any]:
    """The renewal report of every agreement read from the kept explanations (no cycle: each
    ``build_report`` refreshes, which keeps the explanations of any new leaf, then reads the
    agreement's kept rows), after the full pass's detectors stored their flags: its
    ``reports_sha256`` equals the full pass's when the kept rows equal a recomputation."""
    figures: dict[str, Any] = {}
    started, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        rules = rules_from(Settings())
        _timed(figures, "refresh_s", lambda: facts.refresh(session))
        figures["kept_current"] = maintained.current(session, rules)
        _report(session, selection, None, figures, rules=rules)
        figures["total_s"] = round(time.perf_counter() - started, 3)
        figures["cpu_s"] = round(time.process_time() - cpu, 3)
        session.commit()
    return figures


def _refresh_to_log(engine: Engine) -> dict[str, Any]:
    """Bring the facts up to the log in a transaction of their own (committed); what it read."""
    with Session(engine) as session:
        started, cpu = time.perf_counter(), time.process_time()
        figures = {
            "facts": facts.refresh(session).facts,
            "seconds": round(time.perf_counter() - started, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
        }
        session.commit()
    return figures


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(
    engine_name: str,
    shape: Shape,
    keep: Path | None,
    *,
    incremental_only: bool = False,
    facts_kept: bool = False,
    explanations_kept: bool = False,
    trim_kept: bool = False,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "engine": engine_name,
        "persons": shape.persons,
        "entries": shape.entries,
        "days": shape.days,
        "signed": False,
        "merkle_valid": False,
        "note": "generated entries are unsigned; commitments and leaf hashes are placeholders",
    }
    with database(engine_name, keep) as url:
        engine = make_engine(url, sqlite_synchronous="NORMAL")
        if keep is not None and _kept(engine, shape, trim=trim_kept):
            result["generated_s"] = None
            # Tables added since the database was kept (created empty; the refresh fills them).
            Base.metadata.create_all(engine)
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    # Emptied as a fresh store's are (see the derived tables below): the last
                    # runs' flags left dead made each later run's reports slower (18 s, then
                    # 41 s, then 149 s for the 20 reports at 1M, 2026-12-06).
                    conn.exec_driver_sql(
                        "TRUNCATE oversight_flag_entries, oversight_flags, oversight_case_events"
                    )
                else:
                    conn.exec_driver_sql("DELETE FROM oversight_flag_entries")
                    conn.exec_driver_sql("DELETE FROM oversight_flags")
                read = conn.execute(
                    text("SELECT size FROM oversight_watermarks WHERE name = :n"),
                    {"n": facts.WATERMARK},
                ).scalar()
                # An incremental-only run, or a full pass over kept facts, keeps facts already
                # read up to the generated log (not those of a store kept before the refusals
                # were derived: its refusals table is empty while its log has refusals).
                unread = conn.exec_driver_sql(
                    "SELECT NOT EXISTS (SELECT 1 FROM oversight_access_refusals) AND EXISTS "
                    "(SELECT 1 FROM audit_entries WHERE kind = 'refused')"
                ).scalar()
                if unread or not ((incremental_only or facts_kept) and read == shape.entries):
                    # Emptied as a fresh store's are: on PostgreSQL a DELETE would leave the
                    # last run's million rows dead in the tables and their indexes (no
                    # autovacuum here), and the next refresh would be timed against them.
                    derived = (
                        "oversight_access_facts",
                        "oversight_access_queries",
                        "oversight_access_refusals",
                        "oversight_watermarks",
                        "oversight_charge_timeline",
                        "oversight_arrestee_arrests",
                        "oversight_explained_pairs",
                        "oversight_explanation_rules",
                    )
                    if engine.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"TRUNCATE {', '.join(derived)}")
                    else:
                        for table in derived:
                            conn.exec_driver_sql(f"DELETE FROM {table}")
        else:
            result["generated_s"] = generate(engine, shape)
        end = T0 + timedelta(days=shape.days)
        result["baseline_scan"] = baseline_scan(engine, 1, shape.entries)
        if incremental_only or facts_kept:
            # The store's facts brought up to the generated log (the daily run's state after
            # the runs before it), apart from the pass (its own transaction, committed).
            result["facts_refresh_to_log"] = _refresh_to_log(engine)
        if explanations_kept:
            result["explanations_kept"] = _keep_explanations(engine)
        if incremental_only:
            result["full"] = None
        else:
            result["full"] = oversight_pass(engine, Selection(start=T0, end=end))
            result["full"]["facts_kept"] = facts_kept
        if explanations_kept:
            kept = kept_reports(engine, Selection(start=T0, end=end))
            if result["full"] is not None:
                kept["same_reports_as_full"] = kept["reports_sha256"] == result["full"].get(
                    "reports_sha256"
                )
            result["kept_reports"] = kept
        lo, hi = append_day(engine, shape)
        day = Selection(start=end, end=end + timedelta(days=1))
        result["incremental_entries"] = hi - lo + 1
        result["incremental_baseline_scan"] = baseline_scan(engine, lo, hi)
        result["incremental"] = oversight_pass(engine, day, daily=True)
        if keep is not None:
            _drop_entries_from(engine, lo)
        engine.dispose()
    full, inc = result["full"], result["incremental"]
    if full is not None:
        result["full_vs_scan"] = round(
            full["total_s"] / max(result["baseline_scan"]["seconds"], 1e-6), 2
        )
    # The targets are stated for 10,000,000 entries and 1,000,000 persons; a smaller run
    # reports its figures but does not claim them.
    at_scale = shape.entries >= 10_000_000 and shape.persons >= 1_000_000
    result["targets"] = {
        "at_target_scale": at_scale,
        "full_under_120_s": full["total_s"] < 120 if at_scale and full is not None else None,
        "incremental_under_5_s": inc["total_s"] < 5 if at_scale else None,
        "memory_under_2_gib": _peak_rss_mib() < 2048 if at_scale else None,
    }
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


# The store the DuckDB benches' quick runs read (bench/oversight_duckdb*.py --quick): small
# enough to build, facts included, in a few seconds.
QUICK_KEPT = Shape(persons=4_000, entries=40_000, days=30)


def kept_quick_store() -> str:
    """The name of a PostgreSQL store of ``QUICK_KEPT``'s size with its facts up to the log,
    kept and reused while its size matches (as ``--engine postgresql --incremental-only
    --keep-db /tmp/<name>`` makes it)."""
    name = "openpars_bench_duckdb_quick"
    run("postgresql", QUICK_KEPT, Path("/tmp") / name, incremental_only=True)
    return name


def add_kept_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--store``, ``--quick``, ``--days``: the kept store a bench reads (the DuckDB benches)."""
    parser.add_argument("--store", help="the kept PostgreSQL store's database")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="build (or reuse) bench/oversight.py's small kept store (QUICK_KEPT) and run on "
        "it with --compare",
    )
    parser.add_argument("--days", type=int, default=365, help="the period bench/oversight.py made")


def kept_store_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, ``--quick`` resolved: the small kept store (built on first use), its
    period and ``--compare``; else ``--store`` is required."""
    args = parser.parse_args()
    if args.quick:
        args.store, args.days, args.compare = kept_quick_store(), QUICK_KEPT.days, True
    elif args.store is None:
        parser.error("give --store NAME (a store kept by bench/oversight.py) or --quick")
    return args


def add_named_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``DBNAME`` (a store kept by this bench) or ``--quick``, and the store's shape: the day
    benches' arguments (oversight_day_ab.py, oversight_day_plans.py)."""
    parser.add_argument("db", nargs="?", help="the kept store's database (bench/oversight.py)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="build (or reuse) bench/oversight.py's small kept store (QUICK_KEPT) and read it",
    )
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)


def named_store(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Shape:
    """The store's shape, ``--quick`` resolved (``args.db`` set to the small kept store, built
    on first use); without it ``DBNAME`` is required."""
    if args.quick:
        args.db = kept_quick_store()
        return QUICK_KEPT
    if args.db is None:
        parser.error("give DBNAME (a store kept by bench/oversight.py) or --quick")
    return Shape(persons=args.persons, entries=args.entries, days=args.days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 entries, 20,000 persons")
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="period the entries span")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--keep-db",
        type=Path,
        default=None,
        help="SQLite file (or, on PostgreSQL, a database named after its last part) kept and "
        "reused by later runs of the same size",
    )
    parser.add_argument(
        "--incremental-only",
        action="store_true",
        help="skip the full pass: bring the facts up to the generated log, then time the "
        "incremental day alone (with --keep-db, facts already read are kept)",
    )
    parser.add_argument(
        "--facts-kept",
        action="store_true",
        help="the full pass over facts kept up to date (as the daily runs keep them): the "
        "facts are brought up to the log first in a transaction of their own, and the pass's "
        "refresh reads nothing (with --keep-db, facts already read are kept)",
    )
    parser.add_argument(
        "--explanations-kept",
        action="store_true",
        help="keep the explanations (oversight/maintained.py) after the facts, timed apart "
        "(a rebuild when none are kept); then, after the full pass over kept facts (implied), "
        "the 20 renewal reports read from the kept rows, their digest compared with the full "
        "pass's; the incremental day's refresh keeps them too. With --incremental-only: no "
        "full pass (no flags stored): the kept reports timed alone, then the day",
    )
    parser.add_argument(
        "--trim-kept",
        action="store_true",
        help="a kept database whose log grew past its size (an earlier run stopped before "
        "removing its incremental day) is cut back to it; without this it is refused",
    )
    args = parser.parse_args()
    entries, persons = args.entries, args.persons
    if args.quick:
        entries, persons = 200_000, 20_000
    if args.explanations_kept and not args.incremental_only:
        args.facts_kept = True
    if args.facts_kept and args.incremental_only:
        parser.error("--facts-kept runs the full pass, which --incremental-only skips")
    if persons < 1_000 or entries < args.days:
        parser.error("--persons must be at least 1,000 and --entries at least one per day")
    load_all_models()
    load = os.getloadavg()[0]
    try:
        result = run(
            args.engine,
            Shape(persons=persons, entries=entries, days=args.days),
            args.keep_db,
            incremental_only=args.incremental_only,
            facts_kept=args.facts_kept,
            explanations_kept=args.explanations_kept,
            trim_kept=args.trim_kept,
        )
    except GrownStore as refused:
        parser.exit(2, f"{parser.prog}: {refused}\n")
    result["load_average_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
