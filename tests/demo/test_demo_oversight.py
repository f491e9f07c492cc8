"""The demo's governance and oversight: a pending renewal with its report and what-if replay,
and a review case whose flags the detectors raised over the analyst's real reads."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from openpars.audit.models import AuditEntry
from openpars.config import Settings
from openpars.db import Database, make_engine
from openpars.governance.models import Proposal, ProposalReport, ProposalStatus
from openpars.governance.quorum import ProposalAction
from openpars.identity.models import User
from openpars.oversight.models import Case, Flag, FlagEntry
from openpars.web.app import create_app
from tests.demo.test_demo import run_demo

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pages.py"


def bench_pages() -> ModuleType:
    """bench/pages.py as a module (bench/ is not a package), loaded once."""
    if "bench_pages" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_pages", BENCH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_pages"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_pages"]


def test_demo_has_a_pending_renewal_and_a_case_from_real_flags(
    runner: CliRunner, empty_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "credentials.json"
    result = run_demo(runner, empty_url, path)
    assert result.exit_code == 0, result.stderr
    assert "renewal proposal 1 awaits the owners' votes" in result.stdout
    database = Database(make_engine(empty_url))
    try:
        with database.session() as session:
            proposals = session.scalars(select(Proposal)).all()
            assert [(p.action, p.status) for p in proposals] == [
                (ProposalAction.RENEW, ProposalStatus.OPEN)
            ]
            proposal = proposals[0]
            assert session.get(ProposalReport, proposal.id) is not None
            # The renewal votes on a new version, not the one in force.
            assert proposal.agreement_version == 2
            analyst = session.scalars(select(User).where(User.username == "fbi")).one()
            cases = session.scalars(select(Case)).all()
            assert cases and all(c.subject_user_id == analyst.id for c in cases)
            flags = session.scalars(select(Flag)).all()
            assert flags and all(f.case_id in {c.id for c in cases} for f in flags)
            # Every flag stands on audit entries of the analyst's own searches, written by the
            # enforcement point (a hand-made flag would point at no such entry).
            entry_ids = session.scalars(select(FlagEntry.entry_id)).all()
            entries = session.scalars(select(AuditEntry).where(AuditEntry.id.in_(entry_ids))).all()
            assert len(entries) == len(set(entry_ids)) > 0
            assert {(e.user_id, e.action) for e in entries} == {(analyst.id, "person.search")}
            reads = session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.user_id == analyst.id)
            )
            assert reads is not None and reads > len(entries)
    finally:
        database.bind.engine.dispose()

    tokens = {u["username"]: u["token"] for u in json.loads(path.read_text())["users"]}
    application = create_app(Settings(database_url=empty_url))
    # bench/pages.py fills the proposal, what-if and case pages from this data: none skipped.
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            values = bench_pages().demo_values(connection)
    finally:
        engine.dispose()
    targets, _ = bench_pages().plan(
        bench_pages().page_routes(), values, bench_pages().api_get_paths(application)
    )
    measured = {t.route: t.url for t in targets}
    assert measured["/proposals/{proposal_id}"] == f"/proposals/{proposal.id}"
    assert measured["/proposals/{proposal_id}/what-if"] == f"/proposals/{proposal.id}/what-if"
    assert measured["/oversight/cases/{case_id}"] == f"/oversight/cases/{cases[0].id}"
    with TestClient(application) as client:
        replay = client.get(
            f"/api/v1/proposals/{proposal.id}/what-if",
            headers={"Authorization": f"Bearer {tokens['da-voter']}"},
        )
        assert replay.status_code == 200, replay.text
        totals = replay.json()["totals"]
        assert totals["replayed"] == reads
        # The renewal ends name searches: the analyst's name searches would be refused.
        assert totals["newly_refused"] >= 1
    application.state.db.bind.dispose()

    # Run again: nothing new (no second proposal, no second pass over the traffic).
    assert run_demo(runner, empty_url, tmp_path / "again.json").exit_code == 0
    database = Database(make_engine(empty_url))
    try:
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Proposal)) == 1
            assert session.scalar(select(func.count()).select_from(Flag)) == len(flags)
    finally:
        database.bind.engine.dispose()
