"""``openpars import`` in batches: each line answered as alone, refusals by line number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpars.audit.models import AuditEntry
from openpars.db import Database
from openpars.records.cli import import_file
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import audit_since, last_audit_id, row_counts


def test_import_in_batches_reports_each_line_and_audits_each_refusal(
    db: Database, world: World, tmp_path: Path
) -> None:
    good = [arrest_payload() for _ in range(3)]
    future = arrest_payload(arrested_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    lines = [json.dumps(good[0]), "{not json", json.dumps(future), "", json.dumps(good[1])]
    lines += [json.dumps(good[0]), json.dumps(good[2])]
    path = tmp_path / "night.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts, mark = row_counts(db), last_audit_id(db)

    summary = import_file(db, world.principals["intake"], path, batch=2)

    assert (summary.created, summary.replayed, summary.failed) == (3, 1, 2)
    assert [(n, f) for n, _, f in summary.problems] == [(2, "input"), (3, "arrested_at")]
    assert row_counts(db)["arrests"] == counts["arrests"] + 3
    trail = audit_since(db, mark)
    assert trail.count(("refused", "arrest.create", "refused")) == 1  # the unparsable line is not
    assert trail.count(("write", "arrest.create", "ok")) == 3
    assert trail.count(("write", "arrest.create.replayed", "ok")) == 1
    with db.session() as session:
        [content] = (
            session.query(AuditEntry.content)
            .filter(AuditEntry.id > mark, AuditEntry.kind == "refused")
            .all()
        )
    params = json.loads(content[0])["params"]
    assert params["file"] == "night.jsonl" and params["line"] == 3 and params["via"] == "cli"
