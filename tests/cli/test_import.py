"""``openpars import``: one transaction per line, bad lines reported by number and field."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from openpars.db import Database, make_engine
from openpars.demo.generate import plan_arrests
from openpars.records.models import Arrest
from tests.cli.conftest import audit_count
from tests.cli.test_accounts import run, setup_site


def payload_lines(count: int) -> list[str]:
    """``count`` valid ArrestCreate payloads as JSON lines (each person described inline)."""
    plan = plan_arrests(count, seed=5, repeat_rate=0.0)
    return [a.payload({}, plan.persons).model_dump_json() for a in plan.arrests]


def arrest_count(url: str) -> int:
    database = Database(make_engine(url))
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(Arrest)) or 0
    finally:
        database.bind.engine.dispose()


def test_import_reports_bad_lines_and_goes_on(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    setup_site(runner, db_url)
    good = payload_lines(3)
    bad_grade = json.loads(good[1])
    bad_grade["report_id"] = "PPD-BAD-1"
    bad_grade["charges"][0]["grade"] = "F9"
    lines = [good[0], json.dumps(bad_grade), "{not json", "", good[1], good[2], good[0]]
    path = tmp_path / "arrests.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, out, err = run(runner, db_url, "import", str(path), "--as", "booking")

    assert code == 1
    assert "line 2: error:" in err
    assert "(field: charges.0.grade)" in err
    assert "line 3: error:" in err
    assert "line 7" not in err  # a resend is a replay, not a failure
    assert "created 3, replayed 1, failed 2" in out
    assert arrest_count(db_url) == 3


def test_import_refuses_a_domain_rule_with_the_field(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    setup_site(runner, db_url)
    future = json.loads(payload_lines(1)[0])
    future["arrested_at"] = "2999-01-01T00:00:00+00:00"
    path = tmp_path / "future.jsonl"
    path.write_text(json.dumps(future) + "\n", encoding="utf-8")
    before = audit_count(db_url)
    code, out, err = run(runner, db_url, "import", str(path))  # the only intake user
    assert code == 1
    assert "line 1: error: arrested_at 2999-01-01" in err
    assert "(field: arrested_at)" in err
    assert "created 0, replayed 0, failed 1" in out
    assert arrest_count(db_url) == 0
    assert audit_count(db_url) == before + 1  # the refusal, as the API would record it


def test_import_all_good_exits_zero(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    setup_site(runner, db_url)
    path = tmp_path / "ok.jsonl"
    path.write_text("\n".join(payload_lines(4)), encoding="utf-8")
    code, out, err = run(runner, db_url, "import", str(path), "--as", "booking")
    assert code == 0, err
    assert "created 4, replayed 0, failed 0" in out


def test_import_needs_an_intake_account(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(payload_lines(1)[0], encoding="utf-8")
    code, _, err = run(runner, db_url, "import", str(path), "--as", "nobody")
    assert code == 1
    assert "(field: as)" in err
    code, _, err = run(runner, db_url, "import", str(path))
    assert code == 1
    assert "0 active intake accounts exist" in err


def test_import_goes_on_past_a_year_one_line(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    # Year 1 overflowed the time-zone conversion: a 500 that took the whole file down with it.
    setup_site(runner, db_url)
    good = payload_lines(3)
    bad = json.loads(good[1])
    bad["arrested_at"] = "0001-01-01T00:00:00Z"
    path = tmp_path / "night.jsonl"
    path.write_text("\n".join([good[0], json.dumps(bad), good[2]]) + "\n", encoding="utf-8")

    code, out, err = run(runner, db_url, "import", str(path), "--as", "booking")

    assert code == 1
    assert "line 2: error: arrested_at 0001-01-01" in err
    assert "(field: arrested_at)" in err
    assert "created 2, replayed 0, failed 1" in out
    assert arrest_count(db_url) == 2
