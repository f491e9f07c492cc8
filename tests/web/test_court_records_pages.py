"""The pretrial, court, search and record pages over TestClient, as an attacker would try them:
another agency's record, a sealed record, bad fields, a stale form, a missing CSRF token. The
browser tests (tests/browser/test_court_records.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from openpars.config import Settings
from openpars.db import Database
from openpars.identity.roles import Role
from openpars.web.app import create_app
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import (
    add_user,
    arraignment,
    audit_since,
    bail,
    charging,
    last_audit_id,
    row_counts,
    step,
    submit,
)
from tests.web.logon_steps import finish_logon_as
from tests.web.test_pages import give_password, log_in

SEAL = {"action": "seal", "order_reference": "CP-51-MD-0001-2026", "reason": "court order"}


@pytest.fixture
def api(client: TestClient) -> TestClient:
    return client


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app over TLS (the session cookie is Secure), not following redirects."""
    app = create_app(settings, database=db)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def as_user(web: TestClient, db: Database, world: World, username: str) -> TestClient:
    give_password(db, world, username)
    assert log_in(web, username).status_code == 303
    finish_logon_as(web, db, username)
    return web


def charged(api: TestClient, world: World) -> int:
    arrest_id: int = submit(api, world, arrest_payload()).json()["arrest_id"]
    assert step(api, world, arrest_id, "charging-decision", charging(), "charging").is_success
    return arrest_id


def token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def version_of(page: str) -> str:
    match = re.search(r'name="version" value="([^"]*)"', page)
    assert match
    return match.group(1)


def arraignment_form(**overrides: Any) -> dict[str, Any]:
    """An arraignment as the browser sends it: a local (Philadelphia) time, no offset."""
    body = arraignment(docket="MC-51-CR-0000101-2026")
    body["arraigned_at"] = "2026-03-20T10:00"
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_arraign_through_the_page_after_a_bail_recommendation(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(api, world)
    assert step(api, world, arrest_id, "bail-recommendation", bail(), "pretrial").is_success
    as_user(web, db, world, "court")
    docket = web.get("/docket")
    assert docket.status_code == 200
    assert f'href="/arrests/{arrest_id}/arraignment"' in docket.text
    form = web.get(f"/arrests/{arrest_id}/arraignment")
    assert form.status_code == 200
    assert "monetary $5000.00" in form.text  # pretrial's recommendation is shown
    sent = arraignment_form(csrf_token=token_of(form.text), version=version_of(form.text))
    done = web.post(f"/arrests/{arrest_id}/arraignment", data=sent)
    assert done.status_code == 303
    assert done.headers["location"] == f"/arrests/{arrest_id}?saved=arraignment"
    record = web.get(done.headers["location"])
    assert "The arraignment was recorded." in record.text
    assert "MC-51-CR-0000101-2026" in record.text
    # The API's service wrote it, with the API's audit entry.
    got = api.get(f"/api/v1/arrests/{arrest_id}", headers=world.auth("court")).json()
    assert got["arrest"]["state"] == "arraigned"
    assert got["arrest"]["arraignment"]["arraigned_at"].startswith("2026-03-20T14:00")


def test_bad_fields_are_shown_beside_them_and_nothing_is_written(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(api, world)
    as_user(web, db, world, "court")
    form = web.get(f"/arrests/{arrest_id}/arraignment")
    before = row_counts(db)
    sent = arraignment_form(
        csrf_token=token_of(form.text),
        version=version_of(form.text),
        docket_number="CP-51-CR-1-2026",
        magistrate="",
        bail_amount="lots",
    )
    again = web.post(f"/arrests/{arrest_id}/arraignment", data=sent)
    assert again.status_code == 422
    assert 'id="docket_number-error"' in again.text
    assert 'id="magistrate-error"' in again.text
    assert 'id="bail_amount-error"' in again.text
    assert 'value="CP-51-CR-1-2026"' in again.text  # what was typed is kept
    # Each message names the field and the rule in plain words.
    assert "Magistrate is required." in again.text
    assert "Docket number is not in the expected form, for example MC-51-CR-0007226-2025." in (
        again.text
    )
    assert "Bail amount must be a number" in again.text
    assert 'aria-invalid="true"' in again.text
    assert row_counts(db) == before
    # A service rule (the arraignment before the arrest) is shown beside its field too.
    early = arraignment_form(
        csrf_token=token_of(form.text),
        version=version_of(form.text),
        arraigned_at="2001-01-01T09:00",
    )
    refused = web.post(f"/arrests/{arrest_id}/arraignment", data=early)
    assert refused.status_code == 422
    assert 'id="arraigned_at-error"' in refused.text
    assert "is before the arrest" in refused.text
    assert row_counts(db) == before


def test_a_rule_of_the_whole_form_is_shown_beside_its_field(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(api, world)
    as_user(web, db, world, "pretrial")
    form = web.get(f"/arrests/{arrest_id}/bail-recommendation")
    before = row_counts(db)
    sent = {
        "csrf_token": token_of(form.text),
        "version": version_of(form.text),
        "bail_type": "ror",
        "amount": "500",
    }
    again = web.post(f"/arrests/{arrest_id}/bail-recommendation", data=sent)
    assert again.status_code == 422
    assert (
        '<p class="error" id="amount-error">Amount: bail type &#39;ror&#39; carries no amount.'
        in (again.text)
    )
    assert row_counts(db) == before


def test_a_stale_form_is_refused_with_the_reason(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(api, world)
    as_user(web, db, world, "court")
    form = web.get(f"/arrests/{arrest_id}/arraignment")
    # Meanwhile pretrial services records a recommendation: the arrest's version moves on.
    assert step(api, world, arrest_id, "bail-recommendation", bail(), "pretrial").is_success
    before = row_counts(db)
    sent = arraignment_form(csrf_token=token_of(form.text), version=version_of(form.text))
    stale = web.post(f"/arrests/{arrest_id}/arraignment", data=sent)
    assert stale.status_code == 409
    assert "changed since this form was shown" in stale.text
    assert row_counts(db) == before
    # Resubmitting the same stale form is refused again; a form shown afresh goes through.
    assert web.post(f"/arrests/{arrest_id}/arraignment", data=sent).status_code == 409
    fresh = web.get(f"/arrests/{arrest_id}/arraignment")
    sent = arraignment_form(csrf_token=token_of(fresh.text), version=version_of(fresh.text))
    assert web.post(f"/arrests/{arrest_id}/arraignment", data=sent).status_code == 303


def test_a_form_without_its_version_or_csrf_token_writes_nothing(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = charged(api, world)
    as_user(web, db, world, "pretrial")
    form = web.get(f"/arrests/{arrest_id}/bail-recommendation")
    before = row_counts(db)
    after_id = last_audit_id(db)
    body = {"bail_type": "ror"}
    forged = web.post(f"/arrests/{arrest_id}/bail-recommendation", data=body | {"version": "2"})
    assert forged.status_code == 403
    assert "security token" in forged.text
    assert ("refused", f"POST /arrests/{arrest_id}/bail-recommendation", "refused") in audit_since(
        db, after_id
    )
    unversioned = web.post(
        f"/arrests/{arrest_id}/bail-recommendation", data=body | {"csrf_token": token_of(form.text)}
    )
    assert unversioned.status_code == 422
    assert "version it was shown with" in unversioned.text
    assert row_counts(db) == before


def test_a_step_of_another_agency_kind_is_refused_and_audited(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    """A court clerk forging pretrial's form: the service refuses (wrong agency), audited."""
    arrest_id = charged(api, world)
    as_user(web, db, world, "court")
    form = web.get(f"/arrests/{arrest_id}/arraignment")
    after_id = last_audit_id(db)
    before = row_counts(db)
    sent = {"csrf_token": token_of(form.text), "version": version_of(form.text), "bail_type": "ror"}
    refused = web.post(f"/arrests/{arrest_id}/bail-recommendation", data=sent)
    assert refused.status_code == 403
    assert row_counts(db) == before
    assert any(k == "refused" for k, _, _ in audit_since(db, after_id))


def test_search_and_open_the_person_and_arrest_pages(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    payload = arrest_payload()
    arrest_id = submit(api, world, payload).json()["arrest_id"]
    family = payload["involvements"][0]["person"]["family_name"]
    otn = payload["otn"]
    as_user(web, db, world, "reader")
    after_id = last_audit_id(db)
    found = web.get("/search", params={"kind": "arrests", "otn": otn})
    assert found.status_code == 200
    assert f'href="/arrests/{arrest_id}"' in found.text
    assert ("search", "arrest.search", "ok") in audit_since(db, after_id)
    people = web.get("/search", params={"kind": "persons", "name": family})
    assert people.status_code == 200
    person_id = re.search(r'href="/persons/(\d+)"', people.text)
    assert person_id
    record = web.get(f"/arrests/{arrest_id}")
    assert record.status_code == 200
    assert "Timeline of versions" in record.text
    person = web.get(f"/persons/{person_id.group(1)}")
    assert person.status_code == 200
    assert "Involvements" in person.text


def test_bad_search_fields_are_shown_beside_them(
    web: TestClient, db: Database, world: World
) -> None:
    as_user(web, db, world, "reader")
    bad = web.get("/search", params={"kind": "persons", "birth_date": "1990-13-45"})
    assert bad.status_code == 422
    assert 'id="birth_date-error"' in bad.text
    # Control characters in any query parameter are refused before the page runs (as the API).
    nul = web.get("/search", params={"kind": "arrests", "otn": "N1\x00"})
    assert nul.status_code == 422
    assert "Search arrests" not in nul.text
    long = web.get("/search", params={"kind": "arrests", "otn": "N" * 21})
    assert long.status_code == 422
    assert 'id="otn-error"' in long.text
    assert 'value="' + "N" * 21 + '"' in long.text
    # A search with no criterion is refused by the service with its reason.
    nothing = web.get("/search", params={"kind": "persons", "offset": "0"})
    assert nothing.status_code == 200
    assert "Results" not in nothing.text
    empty_form = web.get("/search?kind=arrests")
    assert empty_form.status_code == 200


def test_amendments_show_in_the_timeline_with_their_reason(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = submit(api, world, arrest_payload()).json()["arrest_id"]
    amended = api.patch(
        f"/api/v1/arrests/{arrest_id}",
        json={"reason": "officer's badge number mistyped", "arresting_officer": "P/O Ruiz #4412"},
        headers=world.auth("intake"),
    )
    assert amended.is_success
    as_user(web, db, world, "reader")
    record = web.get(f"/arrests/{arrest_id}")
    assert "officer&#39;s badge number mistyped" in record.text
    assert "arresting_officer" in record.text


def test_a_sealed_record_is_absent_to_a_reader_and_shown_to_sealed_access(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    payload = arrest_payload()
    arrest_id = submit(api, world, payload).json()["arrest_id"]
    sealed = api.post(f"/api/v1/arrests/{arrest_id}/seal", json=SEAL, headers=world.auth("clerk"))
    assert sealed.is_success, sealed.text
    as_user(web, db, world, "reader")
    after_id = last_audit_id(db)
    missing = web.get(f"/arrests/{arrest_id}")
    assert missing.status_code == 404
    assert payload["otn"] not in missing.text
    assert ("refused", f"GET /arrests/{arrest_id}", "refused") in audit_since(db, after_id)
    search = web.get("/search", params={"kind": "arrests", "otn": payload["otn"]})
    assert "Nothing found." in search.text
    assert f"/arrests/{arrest_id}" not in search.text
    web.cookies.clear()
    as_user(web, db, world, "clerk")
    shown = web.get(f"/arrests/{arrest_id}")
    assert shown.status_code == 200
    assert "This record is sealed" in shown.text


def test_an_outside_agency_gets_no_record_page_and_is_audited(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    arrest_id = submit(api, world, arrest_payload()).json()["arrest_id"]
    as_user(web, db, world, "ice")
    after_id = last_audit_id(db)
    for path in (f"/arrests/{arrest_id}", "/search?kind=persons&name=Ri", "/docket"):
        refused = web.get(path)
        assert refused.status_code == 403, path
        assert f"Arrest {arrest_id}" not in refused.text
    assert [k for k, _, _ in audit_since(db, after_id)].count("refused") == 3


def test_search_results_come_a_page_at_a_time(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    ids = {submit(api, world, arrest_payload()).json()["arrest_id"] for _ in range(23)}
    as_user(web, db, world, "reader")
    first = web.get("/search", params={"kind": "arrests", "state": "entered"})
    assert first.status_code == 200
    shown = set(map(int, re.findall(r'href="/arrests/(\d+)"', first.text)))
    assert len(shown) == 20
    assert "Previous page" not in first.text
    following = re.search(r'href="(/search\?[^"]*offset=20)" rel="next"', first.text)
    assert following
    second = web.get(following.group(1).replace("&amp;", "&"))
    rest = set(map(int, re.findall(r'href="/arrests/(\d+)"', second.text)))
    assert shown | rest == ids
    assert not shown & rest
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    assert "Showing 21 to 23" in second.text


def test_a_person_page_lists_only_the_involvements_the_viewer_may_see(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    first = submit(api, world, arrest_payload()).json()
    person_id = first["person_ids"][0]
    again = arrest_payload(involvements=[{"role": "arrestee", "person_id": person_id}])
    second = submit(api, world, again).json()
    sealed = api.post(
        f"/api/v1/arrests/{first['arrest_id']}/seal", json=SEAL, headers=world.auth("clerk")
    )
    assert sealed.is_success, sealed.text
    as_user(web, db, world, "reader")
    page = web.get(f"/persons/{person_id}")
    assert page.status_code == 200
    assert f'href="/arrests/{second["arrest_id"]}"' in page.text
    assert f'href="/arrests/{first["arrest_id"]}"' not in page.text
    web.cookies.clear()
    as_user(web, db, world, "clerk")
    page = web.get(f"/persons/{person_id}")
    assert f'href="/arrests/{first["arrest_id"]}"' in page.text


class Statements:
    """The SQL statements sent while it is open that read users or agencies."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lower()
        if " users" in text or " agencies" in text:
            self.seen.append(statement)

    def __enter__(self) -> Statements:
        event.listen(self.db.bind, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.db.bind, "before_cursor_execute", self._record)


def test_the_arrest_page_names_the_agency_and_the_users_in_one_query(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    quiet = submit(api, world, arrest_payload()).json()["arrest_id"]
    busy = charged(api, world)
    assert step(api, world, busy, "bail-recommendation", bail(), "pretrial").is_success
    as_user(web, db, world, "court")
    with Statements(db) as few:
        assert web.get(f"/arrests/{quiet}").status_code == 200
    with Statements(db) as many:
        page = web.get(f"/arrests/{busy}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "<dd>Philadelphia Police Department (PAPEP0000)</dd>" in text
    for name in ("Intake (intake)", "Charging (charging)", "Pretrial (pretrial)"):
        assert f"<td>{name}</td>" in text
    # Three people named instead of one, and not one more query for them.
    assert len(many.seen) == len(few.seen)


def test_the_audit_entries_page_names_users_and_agencies_in_one_query(
    api: TestClient, web: TestClient, db: Database, world: World
) -> None:
    add_user(db, world, "auditor", "City of Philadelphia", [Role.AUDITOR])
    as_user(web, db, world, "auditor")
    start = last_audit_id(db)
    for _ in range(3):
        assert api.get("/api/v1/persons?name=Smith", headers=world.auth("reader")).is_success
    with Statements(db) as one_user:
        page = web.get(f"/audit/entries?after_id={start}")
    assert page.status_code == 200
    start = last_audit_id(db)
    for username in ("reader", "court", "pretrial", "charging", "intake"):
        assert api.get("/api/v1/persons?name=Smith", headers=world.auth(username)).is_success
    with Statements(db) as five_users:
        page = web.get(f"/audit/entries?after_id={start}")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "<td>Court (court)</td> <td>First Judicial District</td>" in text
    assert "<td>Reader (reader)</td> <td>Defender Association</td>" in text
    assert len(five_users.seen) == len(one_user.seen)
