"""The intake and charging pages without a browser, as an attacker or a tired officer would
use them: bad fields, a forged form, a stale decision, another agency's step, a sealed record,
a person who may already be on file (never merged silently). tests/browser/test_intake.py and
test_charging.py drive the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openpars.config import Settings
from openpars.db import Database
from openpars.records.models import Arrest, ChargingDecision, Involvement, Person
from openpars.web.app import create_app
from tests.factories import World
from tests.records.factories import arrest_payload, person_payload
from tests.records.helpers import bail, charging, step, submit
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import count_entries, entries, give_password, log_in

Browser = Callable[[str], TestClient]


@pytest.fixture
def browser(settings: Settings, db: Database, world: World) -> Iterator[Browser]:
    """A logged-in page client per user (each with its own cookies), over TLS."""
    app = create_app(settings, database=db)
    with ExitStack() as stack:

        def open_as(username: str) -> TestClient:
            give_password(db, world, username)
            web = stack.enter_context(
                TestClient(app, base_url="https://testserver", follow_redirects=False)
            )
            assert log_in(web, username).status_code == 303
            finish_logon_as(web, db, username)
            return web

        yield open_as


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def counts(db: Database) -> tuple[int, int, int, int]:
    with db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Arrest, Person, Involvement, ChargingDecision)
        )


def intake_form(token: str, **fields: str) -> dict[str, str]:
    """A complete intake form: an arrestee, a victim, one charge (override any field)."""
    form = {
        "csrf_token": token,
        "action": "submit",
        "report_id": "PPD-WEB-0001",
        "ori": "PAPEP0000",
        "arresting_officer": "P/O Rivera #4411",
        "arrested_at": "2025-06-01T23:30",
        "arrest_type": "on_view",
        "involvements.0.role": "arrestee",
        "involvements.0.person.family_name": "Quintero",
        "involvements.0.person.given_name": "Abelardo",
        "involvements.0.person.birth_date": "1990-04-02",
        "involvements.1.role": "victim",
        "involvements.1.person.family_name": "Lindqvist",
        "involvements.1.person.given_name": "Margit",
        "charges.0.statute": "18 § 2701(a)(1)",
        "charges.0.description": "Simple assault",
        "charges.0.grade": "M2",
        "charges.0.counts": "1",
    }
    form.update(fields)
    return form


def test_intake_enters_an_arrest_with_a_victim(browser: Browser, db: Database) -> None:
    web = browser("intake")
    page = web.get("/intake")
    assert page.status_code == 200
    assert 'list="statutes"' in page.text and "Simple assault" in page.text  # searchable list
    answer = web.post("/intake", data=intake_form(token_of(page.text)))
    assert answer.status_code == 200, answer.text
    assert "was entered" in answer.text
    with db.session() as session:
        arrest = session.scalars(select(Arrest).where(Arrest.report_id == "PPD-WEB-0001")).one()
        roles = sorted(i.role.value for i in arrest.involvements)
        # A datetime-local value is Philadelphia time: 23:30 EDT is 03:30 UTC the next day.
        assert arrest.arrested_at.isoformat().startswith("2025-06-02T03:30")
    assert roles == ["arrestee", "victim"]
    assert ("arrest.create", "ok", None) in entries(db)


def test_bad_fields_are_shown_beside_them_and_nothing_is_written(
    browser: Browser, db: Database
) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    before = counts(db)
    answer = web.post(
        "/intake",
        data=intake_form(
            token,
            ori="NOT-AN-ORI",
            **{
                "charges.0.statute": "assault",
                "involvements.1.person.given_name": "",
                "involvements.0.person.birth_date": "2099-01-01",
            },
        ),
    )
    assert answer.status_code == 422
    html = answer.text
    for name in ("ori", "charges.0.statute", "involvements.1.person.given_name"):
        assert f'id="{name}-error"' in html, name
        assert re.search(rf'id="{re.escape(name)}"[^>]*aria-invalid="true"', html), name
    assert 'value="Quintero"' in html  # what was typed is kept
    assert counts(db) == before


def test_a_service_refusal_lands_beside_its_field(browser: Browser, db: Database) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    before = counts(db)
    # Born after the arrest: the service's rule, its field mapped back to the form's row.
    answer = web.post(
        "/intake", data=intake_form(token, **{"involvements.1.person.birth_date": "2025-06-05"})
    )
    assert answer.status_code == 422
    assert 'id="involvements.1.person.birth_date-error"' in answer.text
    assert "after the arrest date" in answer.text
    assert counts(db) == before


def test_blank_added_rows_are_ignored_and_errors_keep_their_row(
    browser: Browser, db: Database
) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    # Row 1 left blank, row 2 has a bad phone: the error is beside row 2's field.
    form = intake_form(
        token,
        **{
            "involvements.1.person.family_name": "",
            "involvements.1.person.given_name": "",
            "involvements.2.role": "witness",
            "involvements.2.person.family_name": "Okafor",
            "involvements.2.person.given_name": "Chidi",
            "involvements.2.person.phone": "call me",
        },
    )
    answer = web.post("/intake", data=form)
    assert answer.status_code == 422
    assert 'id="involvements.2.person.phone-error"' in answer.text
    assert 'id="involvements.1.person.phone-error"' not in answer.text


def test_a_person_who_may_be_on_file_is_never_merged_silently(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    known = person_payload(family_name="Quintero", given_name="Abelardo", birth_date="1990-04-02")
    first = submit(
        client,
        world,
        arrest_payload(involvements=[{"role": "arrestee", "person": known}]),
    )
    assert first.status_code == 201, first.text
    existing = first.json()["person_ids"][0]
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    # The match button (htmx) lists the candidate through the API's matching service.
    found = web.post(
        "/intake/match/0",
        data={
            "csrf_token": token,
            "involvements.0.person.family_name": "Quintero",
            "involvements.0.person.given_name": "Abelardo",
            "involvements.0.person.birth_date": "1990-04-02",
        },
    )
    assert found.status_code == 200
    assert f'value="{existing}"' in found.text and 'value="new"' in found.text
    assert ("person.match", "ok", None) in entries(db)
    # Submitting without a choice is refused with the candidates shown, nothing written.
    before = counts(db)
    refused = web.post("/intake", data=intake_form(token))
    assert refused.status_code == 409
    assert 'id="involvements.0.match-error"' in refused.text
    assert f'name="involvements.0.match" value="{existing}"' in refused.text
    assert counts(db) == before
    # The officer picks the existing person: linked, no new person for the arrestee.
    chosen = web.post("/intake", data=intake_form(token, **{"involvements.0.match": str(existing)}))
    assert chosen.status_code == 200, chosen.text
    assert f"linked to person {existing}, as you chose" in chosen.text
    # Or confirms a new one (another report): a second Quintero is created.
    confirmed = web.post(
        "/intake",
        data=intake_form(
            token,
            report_id="PPD-WEB-0002",
            # The victim of the arrest just entered is now on file too: confirmed new as well.
            **{"involvements.0.match": "new", "involvements.1.match": "new"},
        ),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert "new person" in confirmed.text


def test_a_forged_or_missing_form_token_writes_nothing_and_is_audited(
    browser: Browser, db: Database
) -> None:
    web = browser("intake")
    before = counts(db)
    for token in ("", "0" * 64):
        answer = web.post("/intake", data=intake_form(token))
        assert answer.status_code == 403
        assert "security token" in answer.text
    assert counts(db) == before
    assert [e for e in entries(db) if e[2] == "csrf_failed"]


def test_only_intake_may_enter_and_only_the_da_may_decide(browser: Browser, db: Database) -> None:
    da = browser("charging")
    assert da.get("/intake").status_code == 403
    police = browser("intake")
    assert police.get("/charging").status_code == 403
    assert "Charging" not in police.get("/").text.split("</nav>")[0]
    assert sum(1 for _, _, code in entries(db) if code == "permission_denied") >= 2


def _entered(client: TestClient, world: World, at: str) -> int:
    answer = submit(client, world, arrest_payload(arrested_at=at))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["arrest_id"])


def test_the_queue_is_oldest_first_and_drops_a_decided_arrest(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    newer = _entered(client, world, "2025-05-02T10:00:00+00:00")
    older = _entered(client, world, "2025-05-01T10:00:00+00:00")
    da = browser("charging")
    queue = da.get("/charging").text
    assert queue.index(f"/charging/{older}") < queue.index(f"/charging/{newer}")
    assert 'hx-get="/charging/rows?seen=' in queue
    assert ("arrest.search", "ok", None) in entries(db)
    form = da.get(f"/charging/{older}")
    assert form.status_code == 200
    assert "Simple assault" in form.text
    answer = da.post(
        f"/charging/{older}",
        data={"csrf_token": token_of(form.text), "outcome": "approved", "version": "1"},
    )
    assert answer.status_code == 303, answer.text
    rows = da.get("/charging/rows").text
    assert f'/charging/{older}"' not in rows and f'/charging/{newer}"' in rows
    with db.session() as session:
        assert session.get(Arrest, older).state.value == "charged"  # type: ignore[union-attr]


def _digest(html: str) -> str:
    match = re.search(r'hx-get="/charging/rows\?seen=([0-9a-f]{64})"', html)
    assert match, "the queue's poll carries the digest of the rows it shows"
    return match.group(1)


def test_the_queue_poll_is_unaudited_until_the_queue_changes(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    """A queue left open polls every 10 s: while the rows it shows are the same, each poll is
    a 204 with no audit entry; a change brings the rows back through the audited search."""
    first = _entered(client, world, "2025-05-04T10:00:00+00:00")
    da = browser("charging")
    digest = _digest(da.get("/charging").text)
    before = count_entries(db)
    for _ in range(3):
        quiet = da.get(f"/charging/rows?seen={digest}")
        assert quiet.status_code == 204 and quiet.content == b""
    assert count_entries(db) == before
    # A change the queue does not show (a bail step on an arrest already charged) keeps it quiet.
    charged_id = _entered(client, world, "2025-05-05T10:00:00+00:00")
    assert step(client, world, charged_id, "charging-decision", charging(), "charging").is_success
    digest = _digest(da.get("/charging/rows").text)
    before = count_entries(db)
    assert step(client, world, charged_id, "bail-recommendation", bail(), "pretrial").is_success
    after_bail = count_entries(db)
    assert da.get(f"/charging/rows?seen={digest}").status_code == 204
    assert count_entries(db) == after_bail
    # A new arrest in the queue: the poll answers the rows, read through the audited search.
    newer = _entered(client, world, "2025-05-06T10:00:00+00:00")
    mark = len(entries(db))
    changed = da.get(f"/charging/rows?seen={digest}")
    assert changed.status_code == 200
    assert f'/charging/{newer}"' in changed.text and f'/charging/{first}"' in changed.text
    assert [a for a, _, _ in entries(db)[mark:]] == ["arrest.search"]
    fresh = _digest(changed.text)
    assert fresh != digest
    assert da.get(f"/charging/rows?seen={fresh}").status_code == 204
    assert before < after_bail  # the bail step itself was audited, by its own service


def test_a_made_up_digest_gets_the_audited_rows_and_a_malformed_one_is_refused(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    """The poll tells a caller nothing but whether the page it was shown has changed: any other
    digest is answered with the rows, audited, as a first load is."""
    _entered(client, world, "2025-05-07T10:00:00+00:00")
    da = browser("charging")
    mark = len(entries(db))
    guessed = da.get("/charging/rows?seen=" + "0" * 64)
    assert guessed.status_code == 200 and "Arrest " in guessed.text
    assert [a for a, _, _ in entries(db)[mark:]] == ["arrest.search"]
    assert da.get("/charging/rows?seen=not-a-digest").status_code == 422
    # Only the DA's charging attorneys poll the queue.
    refused = browser("intake").get("/charging/rows?seen=" + "0" * 64)
    assert refused.status_code == 403
    assert entries(db)[-1][1:] == ("refused", "permission_denied")


def test_a_stale_decision_is_refused_with_the_reason(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _entered(client, world, "2025-05-03T10:00:00+00:00")
    da = browser("charging")
    form = da.get(f"/charging/{arrest_id}")
    token = token_of(form.text)
    assert 'name="version" value="1"' in form.text
    # Meanwhile another attorney decides it (through the API).
    assert (
        step(client, world, arrest_id, "charging-decision", charging(), "charging").status_code
        == 201
    )
    before = counts(db)
    answer = da.post(
        f"/charging/{arrest_id}",
        data={"csrf_token": token, "outcome": "declined", "reason": "insufficient", "version": "1"},
    )
    assert answer.status_code == 409
    assert "has changed since you saw it" in answer.text
    assert 'name="version" value="2"' in answer.text  # the page now shows version 2
    assert counts(db) == before
    assert (f"POST /charging/{arrest_id}", "refused", "version_mismatch") in entries(db)


def test_decision_errors_beside_their_fields(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _entered(client, world, "2025-05-04T10:00:00+00:00")
    da = browser("charging")
    token = token_of(da.get(f"/charging/{arrest_id}").text)
    before = counts(db)
    declined = da.post(
        f"/charging/{arrest_id}",
        data={"csrf_token": token, "outcome": "declined", "version": "1"},
    )
    assert declined.status_code == 422
    assert 'id="reason-error"' in declined.text and "needs a reason" in declined.text
    modified: dict[str, Any] = {
        "csrf_token": token,
        "outcome": "modified",
        "version": "1",
        "charges.0.statute": "not a statute",
        "charges.0.description": "Theft",
        "charges.0.grade": "M1",
    }
    bad = da.post(f"/charging/{arrest_id}", data=modified)
    assert bad.status_code == 422
    assert 'id="charges.0.statute-error"' in bad.text
    assert 'value="not a statute"' in bad.text
    assert counts(db) == before
    modified["charges.0.statute"] = "18 § 3921(a)"
    good = da.post(f"/charging/{arrest_id}", data=modified)
    assert good.status_code == 303


def test_a_sealed_arrest_is_missing_and_the_attempt_audited(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _entered(client, world, "2025-05-05T10:00:00+00:00")
    sealed = client.post(
        f"/api/v1/arrests/{arrest_id}/seal",
        json={"action": "seal", "order_reference": "CP-51-MD-1-2025", "reason": "court order"},
        headers=world.auth("clerk"),
    )
    assert sealed.status_code == 200, sealed.text
    da = browser("charging")
    assert f'/charging/{arrest_id}"' not in da.get("/charging").text
    page = da.get(f"/charging/{arrest_id}")
    assert page.status_code == 404
    token = token_of(da.get("/charging").text)
    before = counts(db)
    posted = da.post(
        f"/charging/{arrest_id}", data={"csrf_token": token, "outcome": "approved", "version": "2"}
    )
    assert posted.status_code == 404
    assert counts(db) == before
    assert sum(1 for _, _, code in entries(db) if code == "not_found") >= 2


def test_another_agencys_ori_is_refused_beside_the_field_and_audited(
    browser: Browser, db: Database
) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    before = counts(db)
    # The DA's ORI: a police officer cannot file an arrest under another agency.
    answer = web.post("/intake", data=intake_form(token, ori="PA051013A"))
    assert answer.status_code == 422
    assert 'id="ori-error"' in answer.text and "is not the ORI of your agency" in answer.text
    assert counts(db) == before
    assert ("POST /intake", "refused", "ori_not_yours") in entries(db)


def test_a_reused_report_id_is_refused_beside_the_field(browser: Browser, db: Database) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    assert web.post("/intake", data=intake_form(token)).status_code == 200
    # The same report again is the same arrest (idempotent), said so.
    again = web.post("/intake", data=intake_form(token))
    assert again.status_code == 200 and "already entered earlier" in again.text
    before = counts(db)
    changed = web.post("/intake", data=intake_form(token, arresting_officer="P/O Someone Else"))
    assert changed.status_code == 422
    assert 'id="report_id-error"' in changed.text
    assert counts(db) == before


def test_rows_beyond_the_form_are_refused_not_dropped(browser: Browser, db: Database) -> None:
    web = browser("intake")
    token = token_of(web.get("/intake").text)
    before = counts(db)
    form = intake_form(
        token,
        **{"involvements.500.person.family_name": "Hidden", "involvements.500.role": "victim"},
    )
    answer = web.post("/intake", data=form)
    assert answer.status_code == 422
    assert "At most 30 people fit on one form" in answer.text
    assert counts(db) == before


def test_a_modified_charge_on_a_far_row_is_kept_not_dropped(
    browser: Browser, client: TestClient, db: Database, world: World
) -> None:
    arrest_id = _entered(client, world, "2025-05-06T10:00:00+00:00")
    da = browser("charging")
    token = token_of(da.get(f"/charging/{arrest_id}").text)
    line = {"statute": "18 § 3921(a)", "description": "Theft", "grade": "M1"}
    form = {"csrf_token": token, "outcome": "modified", "version": "1"}
    form |= {f"charges.0.{k}": v for k, v in line.items()}
    form |= {f"charges.50.{k}": v for k, v in (line | {"statute": "18 § 2701"}).items()}
    assert da.post(f"/charging/{arrest_id}", data=form).status_code == 303
    with db.session() as session:
        approved = [
            c.statute for c in session.get(Arrest, arrest_id).charges if c.stage.value == "approved"
        ]  # type: ignore[union-attr]
    assert sorted(approved) == ["18 § 2701", "18 § 3921(a)"]
    form["charges.5000.statute"] = "18 § 2701"
    form["version"] = "2"
    refused = da.post(f"/charging/{arrest_id}", data=form)
    assert refused.status_code == 422 and "At most 102 charge rows" in refused.text
