"""A renewal round: several agreements' reports over one period, their pairs explained once.

``report.report_round`` (``openpars report oversight --agreement A --agreement B`` or
``--all-agreements``) explains every pair of the round once (on the store into a temporary
table, on DuckDB into a table of the reader's file) and builds each agreement's report from
it. Each report must be the one built for its agreement alone, byte for byte (``canonical``,
the same ``generated_at``), on either engine; each is audited as a report alone is (one
``oversight.report`` entry per report delivered); bad input is refused naming the argument
before anything is refreshed or DuckDB opened.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from openpars.agreements.models import Agreement
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.oversight import engines
from openpars.oversight.explain import Explained, materialise
from openpars.oversight.explain_sql import Rules
from openpars.oversight.report import (
    OversightReport,
    ReportFormat,
    build_report,
    canonical,
    check_period,
    report_round,
    sha256,
)
from tests.conftest import BACKEND
from tests.factories import World
from tests.oversight.harness import Traffic
from tests.oversight.test_report import _state
from tests.oversight.test_report_duckdb import _store, _url

runner = CliRunner()
postgresql_only = pytest.mark.skipif(
    BACKEND != "postgresql", reason="DuckDB attaches a PostgreSQL store (a SQLite one: refused)"
)


@pytest.fixture
def round_store(fresh_db: Database) -> tuple[Database, World, Traffic]:
    """The harness's traffic with refusals, flags and a closed case's finding (either store)."""
    world, traffic = _store(fresh_db, seed=4)
    return fresh_db, world, traffic


def _period(traffic: Traffic) -> tuple[date, date]:
    return traffic.start.date(), utcnow().date()


def _alone(db: Database, document: OversightReport, reader: Any = None) -> bytes:
    """The report of the same agreement and period built alone, at the same instant."""
    with db.session() as s:
        agreement, period = check_period(s, document.agreement.id, document.start, document.end)
        alone = build_report(
            s, agreement=agreement, period=period, rules=Rules(),
            now=document.generated_at, reader=reader,
        )  # fmt: skip
        s.rollback()
    return canonical(alone)


def _audited(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [
            json.loads(c)["params"]
            for c in s.scalars(
                select(AuditEntry.content)
                .where(AuditEntry.action == "oversight.report")
                .order_by(AuditEntry.id)
            )
        ]


def _seen(documents: list[OversightReport]) -> dict[str, int]:
    """What the compared documents held (every section non-empty somewhere)."""
    seen: dict[str, int] = {}
    for d in documents:
        for key in ("queries", "pairs", "never_charged", "unexplained", "refusals", "flags"):
            seen[key] = seen.get(key, 0) + d.figure(key).value
        seen["weeks"] = seen.get("weeks", 0) + len(d.weekly)
        seen["findings"] = seen.get("findings", 0) + sum(
            sum(r.findings.values()) for r in d.detectors
        )
    return seen


@pytest.mark.parametrize("recompute", [False, True])
def test_a_round_on_the_store_gives_each_report_as_alone_and_audits_each(
    round_store: tuple[Database, World, Traffic], recompute: bool
) -> None:
    db, world, traffic = round_store
    first, last = _period(traffic)
    ids = sorted(traffic.agreements.values())
    before = len(_audited(db))
    with db.session() as s:
        documents = report_round(
            s, actor=world.principals["overseer"], agreement_ids=[*reversed(ids), ids[0]],
            start=first, end=last, rules=Rules(), output=ReportFormat.JSON, via="test",
            recompute=recompute,
        )  # fmt: skip
    # In the order given, once each; one instant for the round.
    assert [d.agreement.id for d in documents] == list(reversed(ids))
    assert len({d.generated_at for d in documents}) == 1
    for document in documents:
        assert canonical(document) == _alone(db, document), document.agreement.id
    assert all(v > 0 for v in _seen(documents).values()), _seen(documents)
    audited = _audited(db)[before:]
    assert [(a["agreement_id"], a["sha256"], a["round"]) for a in audited] == [
        (d.agreement.id, sha256(d), len(ids)) for d in documents
    ]
    assert {(a["engine"], a["via"], a["recompute"], a["format"]) for a in audited} == {
        ("store", "test", recompute, "json")
    }


def test_a_round_of_every_agreement_is_every_agreement_created_by_its_end(
    round_store: tuple[Database, World, Traffic],
) -> None:
    db, world, traffic = round_store
    first, last = _period(traffic)
    with db.session() as s:
        every = list(s.scalars(select(Agreement.id).order_by(Agreement.id)))
        documents = report_round(
            s, actor=world.principals["overseer"], agreement_ids=None, start=first, end=last,
            rules=Rules(), output=ReportFormat.HTML,
        )  # fmt: skip
    assert [d.agreement.id for d in documents] == every
    assert set(traffic.agreements.values()) <= set(every)


@postgresql_only
def test_a_round_on_duckdb_explains_once_and_gives_each_report_as_alone(
    round_store: tuple[Database, World, Traffic],
) -> None:
    db, world, traffic = round_store
    first, last = _period(traffic)
    ids = sorted(traffic.agreements.values())
    settings = Settings(database_url=_url(db))
    before = len(_audited(db))
    statements: list[str] = []
    with engines.reading(settings, engines.ReadEngine.DUCKDB, lambda _: None, db.session) as r:
        assert r is not None
        from sqlalchemy import event

        @event.listens_for(r.get_bind(), "before_cursor_execute")
        def _seen_sql(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        with db.session() as s:
            documents = report_round(
                s, actor=world.principals["overseer"], agreement_ids=ids, start=first,
                end=last, rules=Rules(), output=ReportFormat.JSON, via="test", reader=r,
            )  # fmt: skip
        # One explanation for the round: the charge states (the explanation's costly join)
        # are built by one statement, the one filling the round's table.
        explaining = [q for q in statements if "charge_states" in q]
        assert len(explaining) == 1 and "oversight_round_pairs" in explaining[0]
        # The round's table of the reader's file is dropped when the round ends.
        tables = r.execute(text("SELECT table_name FROM information_schema.tables")).scalars()
        assert "oversight_round_pairs" not in set(tables)
        for document in documents:
            duck_alone = _alone(db, document, reader=r)
            assert canonical(document) == duck_alone, document.agreement.id
            assert canonical(document) == _alone(db, document), document.agreement.id
    assert all(v > 0 for v in _seen(documents).values()), _seen(documents)
    audited = _audited(db)[before:]
    assert [(a["agreement_id"], a["engine"], a["round"], a["sha256"]) for a in audited] == [
        (d.agreement.id, "duckdb", len(ids), sha256(d)) for d in documents
    ]


@postgresql_only
def test_a_cycle_is_read_only_where_it_was_made(
    round_store: tuple[Database, World, Traffic],
) -> None:
    db, _, traffic = round_store
    first, last = _period(traffic)
    ids = sorted(traffic.agreements.values())
    settings = Settings(database_url=_url(db))
    with (
        engines.reading(settings, engines.ReadEngine.DUCKDB, lambda _: None, db.session) as r,
        db.session() as s,
    ):
        assert r is not None
        agreement, period = check_period(s, ids[0], first, last)
        start = agreement.created_at.replace(year=2000)
        store_cycle = materialise(s, start=start, end=utcnow(), agreement_ids=ids, rules=Rules())
        with pytest.raises(ValueError, match="the store's"):
            build_report(s, agreement=agreement, period=period, rules=Rules(), cycle=store_cycle,
                         reader=r)  # fmt: skip
        duck_cycle = Explained(
            table=store_cycle.table, start=start, end=utcnow(), rules=Rules(), size=0,
            agreement_ids=frozenset(ids), on_reader=True,
        )  # fmt: skip
        with pytest.raises(ValueError, match="DuckDB's"):
            build_report(s, agreement=agreement, period=period, rules=Rules(), cycle=duck_cycle)
        s.rollback()


def _cli_round(url: str, traffic: Traffic, folder: Path, *extra: str) -> Any:
    first, last = _period(traffic)
    args = ["report", "oversight", "--from", first.isoformat(), "--to", last.isoformat(),
            "--format", "json", "--db", url, "--out", str(folder), *extra]  # fmt: skip
    return runner.invoke(app, args)


def _url_of(db: Database) -> str:
    assert isinstance(db.bind, Engine)
    return db.bind.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("engine", ["store", "duckdb"])
def test_console_round_writes_each_report_as_alone(
    round_store: tuple[Database, World, Traffic], tmp_path: Path, engine: str
) -> None:
    if engine == "duckdb" and BACKEND != "postgresql":
        pytest.skip("DuckDB attaches a PostgreSQL store")
    db, _, traffic = round_store
    url = _url_of(db)
    first, last = _period(traffic)
    ids = sorted(traffic.agreements.values())
    picked = [str(a) for a in ids[:2]]
    before = len(_audited(db))
    result = _cli_round(url, traffic, tmp_path / "two", "--engine", engine,
                        "--agreement", picked[0], "--agreement", picked[1])  # fmt: skip
    assert result.exit_code == 0, result.output
    every = _cli_round(url, traffic, tmp_path / "all", "--engine", engine, "--all-agreements")
    assert every.exit_code == 0, every.output
    with db.session() as s:
        all_ids = list(s.scalars(select(Agreement.id).order_by(Agreement.id)))
    names = {f"oversight-{a}-{first}-{last}.json" for a in all_ids}
    assert {p.name for p in (tmp_path / "all").iterdir()} == names
    for agreement_id in picked:
        alone = tmp_path / f"alone-{agreement_id}.json"
        single = runner.invoke(app, ["report", "oversight", "--agreement", agreement_id,
                                     "--from", first.isoformat(), "--to", last.isoformat(),
                                     "--format", "json", "--db", url,
                                     "--out", str(alone)])  # fmt: skip
        assert single.exit_code == 0, single.output
        name = f"oversight-{agreement_id}-{first}-{last}.json"
        for folder in ("two", "all"):
            body = json.loads((tmp_path / folder / name).read_bytes())
            expected = json.loads(alone.read_bytes())
            body.pop("generated_at"), expected.pop("generated_at")
            assert body == expected, (agreement_id, folder)
        assert "report SHA-256 " in result.output
    audited = _audited(db)[before:]
    rounds = [(a["agreement_id"], a.get("round"), a["engine"]) for a in audited]
    assert rounds == [
        *((int(a), 2, engine) for a in picked),
        *((a, len(all_ids), engine) for a in all_ids),
        *((int(a), None, "store") for a in picked),
    ]


@pytest.mark.parametrize("engine", ["store", "duckdb"])
def test_console_round_bad_input_names_the_argument_and_writes_only_its_refusal(
    round_store: tuple[Database, World, Traffic], tmp_path: Path, engine: str
) -> None:
    db, _, traffic = round_store
    url = _url_of(db)
    some = str(min(traffic.agreements.values()))
    cases = [
        (["--agreement", some, "--agreement", "999999"], "agreement", 1),
        (["--all-agreements", "--from", "2000-01-01", "--to", "2000-01-31"], "to", 1),
        (["--agreement", some, "--agreement", some + "0", "--from", "2999-01-01"], "from", 1),
    ]
    for extra, field, refusals in cases:
        before = _state(db)
        result = _cli_round(url, traffic, tmp_path / "out", "--engine", engine, *extra)
        assert result.exit_code == 1, result.output
        expected = "engine" if engine == "duckdb" and BACKEND == "sqlite" else field
        assert f"(field: {expected})" in result.output, result.output
        after = _state(db)
        # Nothing refreshed, stored or audited but the refusal; no report written.
        if engine == "duckdb" and BACKEND == "sqlite":
            # The engine refused first, as for one report (test_report_duckdb: at most the
            # refusal's entry).
            assert after[2] - before[2] <= refusals
            after = (after[0], after[1], before[2] + refusals, after[3], after[4])
        assert after == (before[0], before[1], before[2] + refusals, before[3], before[4])
        assert not (tmp_path / "out").exists()
    # Options a round cannot take: refused before anything is opened (nothing written at all).
    usage = [
        (["--all-agreements"], None, "out"),
        (["--agreement", some, "--all-agreements"], tmp_path / "o", "agreement"),
        (["--all-agreements", "--verify"], tmp_path / "o", "verify"),
        (["--all-agreements", "--what-if-proposal", "1"], tmp_path / "o", "what_if_proposal"),
    ]
    first, last = _period(traffic)
    for extra, folder, field in usage:
        before = _state(db)
        args = ["report", "oversight", "--from", first.isoformat(), "--to", last.isoformat(),
                "--db", url, "--engine", engine, *extra]  # fmt: skip
        if folder is not None:
            args += ["--out", str(folder)]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert f"(field: {field})" in result.output, result.output
        assert _state(db) == before


ROUND = "/api/v1/oversight/reports/round"


@pytest.mark.parametrize("engine", ["store", "duckdb"])
def test_api_round_gives_each_report_as_alone(
    round_store: tuple[Database, World, Traffic], tmp_path: Path, engine: str
) -> None:
    if engine == "duckdb" and BACKEND != "postgresql":
        pytest.skip("DuckDB attaches a PostgreSQL store")
    from fastapi.testclient import TestClient

    from openpars.web.app import create_app
    from tests.oversight.test_report import REPORTS
    from tests.oversight.test_report_duckdb import _settings

    db, world, traffic = round_store
    first, last = _period(traffic)
    ids = sorted(traffic.agreements.values())
    period = {"from": first.isoformat(), "to": last.isoformat()}
    auth = world.auth("overseer")
    before = len(_audited(db))
    with TestClient(create_app(_settings(_url_of(db), tmp_path), database=db)) as client:
        response = client.get(
            ROUND, params={**period, "agreement": ids[:2], "engine": engine}, headers=auth
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["agreement_id"] for r in body["reports"]] == ids[:2]
        for item in body["reports"]:
            report = OversightReport.model_validate(item["report"])
            assert item["sha256"] == sha256(report)
            # The report alone, of the same log size (the app integrates the log between
            # requests: one made later counts more leaves) and instant, is the same bytes.
            with db.session() as s:
                agreement, alone_period = check_period(s, report.agreement.id, first, last)
                alone = build_report(
                    s, agreement=agreement, period=alone_period, rules=Rules(),
                    now=report.generated_at, size=report.tree_size,
                )  # fmt: skip
                s.rollback()
            assert canonical(report) == canonical(alone), report.agreement.id
            by_api = client.get(
                REPORTS, params={**period, "agreement": item["agreement_id"], "format": "json"},
                headers=auth,
            )  # fmt: skip
            assert by_api.status_code == 200, by_api.text
        audited = _audited(db)[before:]
        assert [(a["agreement_id"], a.get("round"), a["engine"]) for a in audited] == [
            (ids[0], 2, engine), (ids[1], 2, engine), (ids[0], None, "store"),
            (ids[1], None, "store"),
        ]  # fmt: skip
        # Bad input names the argument; nothing written but the refusal's entry.
        for params, status, field in [
            ({}, 422, "agreement"),
            ({"agreement": ids[0], "all_agreements": "true"}, 422, "agreement"),
            ({"agreement": [ids[0], 999_999]}, 404, "agreement"),
            ({"all_agreements": "true", "from": "2000-01-01", "to": "2000-01-31"}, 422, "to"),
        ]:
            state = _state(db)
            refused = client.get(ROUND, params={**period, "engine": engine, **params}, headers=auth)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["field"] == field, refused.text
            after = _state(db)
            assert (after[0], after[1], after[3], after[4]) == (
                state[0], state[1], state[3], state[4],
            )  # fmt: skip
            assert after[2] - state[2] <= 1
        # An outside agency never reads a round either.
        outside = client.get(ROUND, params={**period, "all_agreements": "true"},
                             headers=world.auth("ice-0"))  # fmt: skip
        assert outside.status_code == 403, outside.text
        document = client.get("/openapi.json").json()
        names = {p["name"] for p in document["paths"][ROUND]["get"]["parameters"]}
        assert {"agreement", "all_agreements", "from", "to", "engine"} <= names


@postgresql_only
def test_two_reports_on_one_store_run_at_once(
    round_store: tuple[Database, World, Traffic],
) -> None:
    """The facts read up to the log (committed), a report claims nothing: a second report on
    the store runs while the first's transaction is still open, where it waited for the facts'
    watermark (``FOR UPDATE``) until the first ended; the two are the same document."""
    from openpars.oversight import facts

    db, world, traffic = round_store
    first, last = _period(traffic)
    agreement_id = min(traffic.agreements.values())
    with db.session() as s:
        facts.refresh(s)
    with db.session() as one, db.session() as two:
        built = []
        for s in (one, two):
            # Waiting for the other's lock fails the test (it would wait until the first ends).
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            agreement, period = check_period(s, agreement_id, first, last)
            built.append(
                build_report(s, agreement=agreement, period=period, rules=Rules(), now=utcnow())
            )
        assert canonical(built[0].model_copy(update={"generated_at": built[1].generated_at})) == (
            canonical(built[1])
        )
        assert built[0].figure("pairs").value > 0
        one.rollback(), two.rollback()
    # Facts behind the log (a new leaf): the report refreshes them, claiming the watermark.
    from openpars.audit import log
    from openpars.audit.events import AuditKind, event_by
    from openpars.audit.service import append

    with db.session() as s:
        append(s, event_by(world.principals["overseer"], kind=AuditKind.AUDIT_READ,
                           action="test.read", params={}))  # fmt: skip
    with db.session() as s:
        log.integrate(s)
    with db.session() as one, db.session() as two:
        agreement, period = check_period(one, agreement_id, first, last)
        build_report(one, agreement=agreement, period=period, rules=Rules(), now=utcnow())
        two.execute(text("SET LOCAL lock_timeout = '1s'"))
        agreement, period = check_period(two, agreement_id, first, last)
        with pytest.raises(Exception, match="lock timeout"):
            build_report(two, agreement=agreement, period=period, rules=Rules(), now=utcnow())
        two.rollback(), one.rollback()
