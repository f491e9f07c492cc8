"""The renewal report, explanations and coverage on DuckDB reading the store (issue 13).

``engine`` duckdb (``--engine duckdb`` on ``openpars report oversight``, ``engine=duckdb`` on
``GET /oversight/reports``, ``/explanations`` and ``/coverage``) runs every figure's statement on
DuckDB attached to the PostgreSQL store read-only: the report's JSON must be the store's, byte
for byte, over the harness's traffic with its refusals, the detectors' flags and a closed case's
finding. A SQLite store cannot be attached: the engine is refused naming ``engine``, and bad
input is refused naming its argument on either store, writing nothing but the refusal's entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from openpars.audit import log
from openpars.audit.models import AuditEntry
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database, utcnow
from openpars.identity.roles import Role
from openpars.oversight import engines, facts
from openpars.oversight.explain_sql import Rules
from openpars.oversight.flags import run_detectors
from openpars.oversight.models import Finding, Flag
from openpars.oversight.report import build_report, canonical, check_period
from openpars.oversight.review import close_case, group_flags
from openpars.web.app import create_app
from tests.conftest import BACKEND
from tests.factories import World, add_user, build_world
from tests.oversight.harness import Traffic, build_traffic
from tests.oversight.test_explain_api import build_scene
from tests.oversight.test_report import REPORTS, Setup, _state
from tests.oversight.test_report import setup as setup

runner = CliRunner()
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
postgresql_only = pytest.mark.skipif(
    BACKEND != "postgresql", reason="DuckDB attaches a PostgreSQL store (a SQLite one: refused)"
)


def _url(db: Database) -> str:
    assert isinstance(db.bind, Engine)
    return db.bind.url.render_as_string(hide_password=False)


def _settings(url: str, folder: Path) -> Settings:
    """The site's settings naming the store DuckDB attaches; keys in the test's folder."""
    return Settings(
        database_url=url, log_key_path=folder / "log.key", mfa_key_path=folder / "mfa.key"
    )


def _store(db: Database, seed: int) -> tuple[World, Traffic]:
    """The harness's traffic, integrated and refreshed, the detectors' flags stored and
    grouped into cases, one closed with a finding: what every section of the report shows."""
    with db.session() as s:
        world = build_world(s)
        add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])
    traffic = build_traffic(db, world, seed=seed)
    with db.session() as s:
        log.integrate(s)
    with db.session() as s:
        facts.refresh(s)
        assert run_detectors(s)
        group_flags(s)
        case_id = s.scalar(select(Flag.case_id).where(Flag.case_id.is_not(None)).limit(1))
        assert case_id is not None
        close_case(s, actor=world.principals["overseer"], case_id=case_id,
                   finding=Finding.TRAINING, note="told the user")  # fmt: skip
    return world, traffic


@pytest.fixture
def harness_store(fresh_db: Database) -> tuple[Database, World, Traffic]:
    if BACKEND != "postgresql":
        pytest.skip("DuckDB attaches a PostgreSQL store")
    world, traffic = _store(fresh_db, seed=4)
    return fresh_db, world, traffic


def _documents(db: Database, traffic: Traffic) -> Iterator[tuple[int, bytes, bytes, Any]]:
    """Each agreement's report over the traffic's period, from the store and from DuckDB."""
    settings = Settings(database_url=_url(db))
    with engines.reading(settings, engines.ReadEngine.DUCKDB, lambda _: None, db.session) as r:
        assert r is not None
        for agreement_id in sorted(traffic.agreements.values()):
            with db.session() as s:
                agreement, period = check_period(
                    s, agreement_id, traffic.start.date(), utcnow().date()
                )
                store = build_report(s, agreement=agreement, period=period, rules=Rules(), now=NOW)
                duck = build_report(
                    s, agreement=agreement, period=period, rules=Rules(), now=NOW, reader=r
                )
            yield agreement_id, canonical(store), canonical(duck), store


@postgresql_only
def test_the_report_on_duckdb_is_the_stores_byte_for_byte(
    harness_store: tuple[Database, World, Traffic],
) -> None:
    db, _, traffic = harness_store
    seen: dict[str, int] = {}
    for agreement_id, store, duck, document in _documents(db, traffic):
        assert duck == store, agreement_id
        for key in ("queries", "never_charged", "unexplained", "refusals", "flags"):
            seen[key] = seen.get(key, 0) + document.figure(key).value
        seen["weeks"] = seen.get("weeks", 0) + len(document.weekly)
        seen["findings"] = seen.get("findings", 0) + sum(
            sum(d.findings.values()) for d in document.detectors
        )
    # Every section was compared with something in it.
    assert all(seen[k] > 0 for k in seen), seen


@postgresql_only
def test_console_report_on_duckdb(
    harness_store: tuple[Database, World, Traffic], tmp_path: Path
) -> None:
    db, _, traffic = harness_store
    url = _url(db)
    for agreement_id in sorted(traffic.agreements.values()):
        args = ["report", "oversight", "--agreement", str(agreement_id), "--from",
                traffic.start.date().isoformat(), "--to", utcnow().date().isoformat(),
                "--format", "json", "--db", url]  # fmt: skip
        bodies = []
        for engine in ("store", "duckdb"):
            out = tmp_path / f"{agreement_id}-{engine}.json"
            result = runner.invoke(app, [*args, "--engine", engine, "--out", str(out)])
            assert result.exit_code == 0, result.output
            body = json.loads(out.read_bytes())
            body.pop("generated_at")
            bodies.append(body)
        assert bodies[0] == bodies[1], agreement_id
    # --verify on DuckDB: built there and in the store afresh, the same bytes.
    verified = runner.invoke(app, [*args, "--engine", "duckdb", "--verify"])
    assert verified.exit_code == 0, verified.output
    with db.session() as s:
        audited = [
            json.loads(c)["params"]["engine"]
            for c in s.scalars(
                select(AuditEntry.content)
                .where(AuditEntry.action == "oversight.report")
                .order_by(AuditEntry.id)
            )
        ]
    assert audited == ["store", "duckdb"] * len(traffic.agreements) + ["duckdb"]


@postgresql_only
def test_api_engine_duckdb_gives_the_stores_answers(
    harness_store: tuple[Database, World, Traffic], tmp_path: Path
) -> None:
    db, world, traffic = harness_store
    settings = _settings(_url(db), tmp_path)
    period = {"from": traffic.start.date().isoformat(), "to": utcnow().date().isoformat()}
    auth = world.auth("overseer")
    with TestClient(create_app(settings, database=db)) as client:

        def both(path: str, **params: object) -> list[Any]:
            bodies = []
            for engine in ("store", "duckdb"):
                response = client.get(path, params={**params, "engine": engine}, headers=auth)
                assert response.status_code == 200, response.text
                body = response.json()
                body.pop("audit_entry", None)  # the request's own entry
                bodies.append(body)
            return bodies

        for agreement_id in sorted(traffic.agreements.values()):
            store, duck = both(REPORTS, agreement=agreement_id, format="json", **period)
            store.pop("generated_at"), duck.pop("generated_at")
            # The log grows by each request's own entry, which the integrator may have taken
            # into the tree between the two requests (under load it sometimes has): the size
            # read may move on, never back; the figures, over external accesses only, do not.
            for size in ("tree_size", "checkpoint_size"):
                assert (duck.pop(size) or 0) >= (store.pop(size) or 0), (agreement_id, size)
            assert duck == store, agreement_id
            store, duck = both(
                "/api/v1/oversight/coverage", agreement=agreement_id, by="week", **period
            )
            assert duck == store and store["total"]["pairs"] > 0
            store, duck = both(
                "/api/v1/oversight/explanations", agreement=agreement_id, limit=500, **period
            )
            assert duck == store and store["items"]
    # Each request audited in the store, naming the engine it ran on.
    actions = ("oversight.report", "oversight.coverage", "oversight.explanations")
    with db.session() as s:
        audited = [
            (json.loads(c)["params"]["engine"], action)
            for action, c in s.execute(
                select(AuditEntry.action, AuditEntry.content)
                .where(AuditEntry.action.in_(actions), AuditEntry.user_id.is_not(None))
                .order_by(AuditEntry.id)
            )
        ]
    assert audited == [
        (engine, action) for _ in traffic.agreements for action in actions
        for engine in ("store", "duckdb")
    ]  # fmt: skip


# -- the option's bad values, on either store ------------------------------------------------------


@pytest.fixture
def pg_client(engine: Engine, db: Database, tmp_path: Path) -> Iterator[TestClient]:
    """The app over the test's database, its settings naming the same store (DuckDB attaches
    the URL the settings give)."""
    settings = _settings(engine.url.render_as_string(hide_password=False), tmp_path)
    with TestClient(create_app(settings, database=db)) as test_client:
        yield test_client


ENDPOINTS = (REPORTS, "/api/v1/oversight/coverage", "/api/v1/oversight/explanations")


def test_a_bad_engine_is_a_422_naming_it_and_writes_nothing(
    pg_client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    for path in ENDPOINTS:
        before = _state(db)
        response = pg_client.get(
            path, params=setup.query(format="json", engine="spark"),
            headers=world.auth("overseer"),
        )  # fmt: skip
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert [p["field"] for p in error["details"]["problems"]] == ["engine"], error
        assert "'store' or 'duckdb'" in error["details"]["problems"][0]["message"]
        assert _state(db) == before


@pytest.mark.parametrize(
    ("change", "status", "field", "code"),
    [
        ({"agreement": 999_999}, 404, "agreement", "not_found"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 422, "from", "from_after_to"),
        ({"from": "2999-01-01", "to": "2999-01-02"}, 422, "from", "period_in_future"),
        ({"to": "2999-01-01"}, 422, "to", "period_in_future"),
        ({"from": "2000-01-01", "to": "2000-01-31"}, 422, "to", "empty_period"),
    ],
)  # fmt: skip
def test_bad_input_on_duckdb_names_the_argument_and_writes_only_the_audit_entry(
    pg_client: TestClient, db: Database, world: World, setup: Setup, change: dict[str, object],
    status: int, field: str, code: str,
) -> None:  # fmt: skip
    # Checked before DuckDB is opened or the facts refreshed (on SQLite the engine itself is
    # refused first: the next test).
    if BACKEND != "postgresql":
        pytest.skip("on SQLite engine duckdb is refused before the arguments")
    before = _state(db)
    response = pg_client.get(
        REPORTS, params={**setup.query(format="json", engine="duckdb"), **change},
        headers=world.auth("overseer"),
    )  # fmt: skip
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["field"], error["code"]) == (field, code)
    after = _state(db)
    assert after == (before[0], before[1], before[2] + 1, before[3], before[4])


@pytest.mark.parametrize(
    ("change", "status", "field", "code"),
    [
        ({"agreement": 999_999}, 404, "agreement", "not_found"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, 422, "to", "empty_period"),
        ({"from": "2999-01-01", "to": "2999-01-02"}, 422, "from", "period_in_future"),
    ],
)  # fmt: skip
def test_bad_input_to_explanations_and_coverage_on_duckdb_writes_only_the_audit_entry(
    pg_client: TestClient, db: Database, world: World, setup: Setup, change: dict[str, object],
    status: int, field: str, code: str,
) -> None:  # fmt: skip
    if BACKEND != "postgresql":
        pytest.skip("on SQLite engine duckdb is refused before the arguments")
    for path in ENDPOINTS[1:]:
        before = _state(db)
        response = pg_client.get(
            path, params={**setup.query(engine="duckdb"), **change},
            headers=world.auth("overseer"),
        )  # fmt: skip
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == (field, code)
        after = _state(db)
        assert after == (before[0], before[1], before[2] + 1, before[3], before[4])


def test_engine_duckdb_on_a_sqlite_store_is_refused_naming_it(
    pg_client: TestClient, db: Database, world: World, setup: Setup
) -> None:
    if BACKEND != "sqlite":
        pytest.skip("a PostgreSQL store is attached (the tests above)")
    for path in ENDPOINTS:
        before = _state(db)
        response = pg_client.get(
            path, params=setup.query(format="json", engine="duckdb"),
            headers=world.auth("overseer"),
        )  # fmt: skip
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == ("engine", "duckdb_needs_postgresql")
        after = _state(db)
        assert after == (before[0], before[1], before[2] + 1, before[3], before[4])


def test_the_option_is_in_the_openapi_document(pg_client: TestClient) -> None:
    document = pg_client.get("/openapi.json").json()
    for path in ENDPOINTS:
        parameters = document["paths"][path]["get"]["parameters"]
        (engine,) = [p for p in parameters if p["name"] == "engine"]
        schema = engine["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert schema.get("enum") == ["store", "duckdb"], engine
        assert engine.get("schema", {}).get("default", "store") == "store"
        assert "DuckDB" in engine["description"]


def test_console_engine_duckdb_on_bad_input_names_the_argument(fresh_db: Database) -> None:
    url = _url(fresh_db)
    with fresh_db.session() as s:
        world = build_world(s)
    agreement = str(build_scene(fresh_db, world).agreement)
    before = _state(fresh_db)
    args = ["report", "oversight", "--format", "json", "--engine", "duckdb", "--db", url]
    cases = [
        (["--agreement", "999", "--from", "2026-01-01", "--to", "2026-01-02"], "agreement"),
        (["--agreement", agreement, "--from", "2026-03-02", "--to", "2026-03-01"], "from"),
        (["--agreement", agreement, "--from", "2999-01-01", "--to", "2999-01-02"], "from"),
        (["--agreement", agreement, "--from", "2000-01-01", "--to", "2000-01-31"], "to"),
    ]
    for extra, field in cases:
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 1, result.output
        expected = "engine" if BACKEND == "sqlite" else field
        assert f"(field: {expected})" in result.output, result.output
    after = _state(fresh_db)
    # The facts not refreshed, no flag or report stored; at most the refusals' own entries.
    assert (after[0], after[1], after[3], after[4]) == (before[0], before[1], before[3], before[4])
    assert after[2] - before[2] <= len(cases)
