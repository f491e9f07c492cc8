"""The public transparency report: fixed categories, clamped counts, OpenDP noise, the ledger.

A scene of last month's external traffic: ICE reads under its agreement's purpose (one real
read through the read service, the rest appended like the read service appends them), refusals
of a purpose outside its agreement, an FBI warrant check and a rate-limit refusal, and traffic
that must not count (an internal reader, the month before, the month after).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from openpars.access import service as reads
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.audit.events import AuditEvent, AuditKind, Outcome, event_by
from openpars.audit.models import AuditEntry
from openpars.audit.service import append
from openpars.cli import app
from openpars.config import Settings
from openpars.db import Database
from openpars.errors import InvalidInput
from openpars.identity.roles import Role
from openpars.oversight import transparency as tr
from openpars.oversight.models import TransparencyRelease
from tests.access.agreements import activate, default_scope
from tests.factories import World, add_user, build_world, city_voter

ICE = "Immigration and Customs Enforcement"
FBI = "Federal Bureau of Investigation"
INVESTIGATION = "criminal-investigation"
WARRANT = "warrant-check"
OUTSIDE = "immigration-enforcement"

runner = CliRunner()


def last_month(now: datetime | None = None) -> tr.Month:
    """The calendar month before the current one."""
    first = (now or datetime.now(UTC)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    label = (first - timedelta(days=1)).strftime("%Y-%m")
    return tr.parse_month(label)


@dataclass
class Scene:
    """Last month, and the exact counts the scene wrote into it (before clamping)."""

    month: tr.Month
    ice: int
    fbi: int


def _refusal(world: World, user: str, purpose: str | None, code: str) -> AuditEvent:
    """A refusal as the API's error handler appends it (its query string, its error code)."""
    p = world.principals[user]
    query = {"sid": "X1"} | ({"purpose": purpose} if purpose else {})
    return AuditEvent(
        kind=AuditKind.REFUSED, action="GET /api/v1/persons", outcome=Outcome.REFUSED,
        user_id=p.user_id, username=p.username, agency_id=p.agency_id,
        params={"query": query, "status": 403}, error_code=code,
    )  # fmt: skip


def build_scene(db: Database, world: World) -> Scene:
    """Agreements for ICE and FBI, then last month's traffic and some that must not count."""
    month = last_month()
    purposes = [{"purpose": INVESTIGATION}, {"purpose": WARRANT}]
    with db.session() as s:
        agreements = {
            agency: activate(s, world, grantee=agency, scope=default_scope(purposes=purposes)).id
            for agency in (ICE, FBI)
        }
        for i in range(3):
            add_user(s, world, f"ice-{i}", ICE, [Role.EXTERNAL_QUERY])
        add_user(s, world, "overseer", "City of Philadelphia", [Role.OVERSIGHT])
        city_voter(s, world)
    at = month.start + timedelta(days=3)
    # One real read through the enforcement point (a search by SID that finds no one).
    with db.session(external=True) as s:
        reads.search_persons(
            s, principal=world.principals["ice-0"], query=PersonQuery(sid="NOSUCH1"),
            context=ReadContext(purpose=INVESTIGATION), now=at,
        )  # fmt: skip
    agreement = agreements[ICE]
    events: list[tuple[AuditEvent, datetime]] = []
    for n in range(6):  # ice-0: 7 answered reads in all
        events.append((_read(world, "ice-0", INVESTIGATION, agreement), at + timedelta(hours=n)))
    for n in range(4):  # ice-1: 4 refusals, a purpose outside its agreement
        events.append(
            (_refusal(world, "ice-1", OUTSIDE, "purpose_not_allowed"), at + timedelta(hours=n))
        )
    events.append((_refusal(world, "ice-2", None, "rate_limited"), at))
    events.append((_read(world, "fbi", WARRANT, None), at))
    events.append((_read(world, "fbi", WARRANT, None), at + timedelta(minutes=5)))
    # Not counted: an internal reader, the month before, the month after.
    events.append((_read(world, "reader", INVESTIGATION, None), at))
    events.append(
        (_read(world, "ice-0", INVESTIGATION, agreement), month.start - timedelta(hours=1))
    )
    events.append((_read(world, "ice-0", INVESTIGATION, agreement), month.end))
    with db.session() as s:
        for event, moment in events:
            append(s, event, at=moment)
    return Scene(month=month, ice=world.agencies[ICE], fbi=world.agencies[FBI])


def _read(world: World, user: str, purpose: str, agreement: int | None) -> AuditEvent:
    return event_by(
        world.principals[user], kind=AuditKind.SEARCH, action="person.search",
        params={"query": {"sid": "X1"}, "purpose": purpose}, agreement_id=agreement,
        agreement_version=1 if agreement else None,
    )  # fmt: skip


@pytest.fixture
def scene(db: Database, world: World) -> Scene:
    """The scene on the test's database."""
    return build_scene(db, world)


def _settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def _noise_recorder() -> tuple[tr.NoiseFactory, list[dict[str, Any]]]:
    """OpenDP's real mechanism, recording each call's scale, input and output."""
    calls: list[dict[str, Any]] = []

    def factory(scale: float) -> Callable[[list[int]], list[int]]:
        add = tr.opendp_noise(scale)

        def record(counts: list[int]) -> list[int]:
            noisy = add(counts)
            calls.append({"scale": scale, "input": list(counts), "output": noisy})
            return noisy

        return record

    return factory, calls


def seeded_discrete_laplace(seed: int) -> tr.NoiseFactory:
    """A test-only mechanism with a fixed RNG: discrete Laplace as the difference of two
    geometric variables (never a deployment setting: production noise is OpenDP's)."""
    rng = random.Random(seed)

    def factory(scale: float) -> Callable[[list[int]], list[int]]:
        p = 1 - math.exp(-1 / scale)

        def geometric() -> int:
            return math.floor(math.log(1 - rng.random()) / math.log(1 - p))

        return lambda counts: [c + geometric() - geometric() for c in counts]

    return factory


# ---------------------------------------------------------------------------------------------
# Categories and exact counts
# ---------------------------------------------------------------------------------------------


def test_categories_come_from_the_registry_not_from_the_log(db: Database, scene: Scene) -> None:
    with db.session() as s:
        cats = tr.categories(s)
    assert [(c.id, c.purposes) for c in cats] == [
        (scene.ice, [INVESTIGATION, WARRANT, tr.OTHER_PURPOSE]),
        (scene.fbi, [INVESTIGATION, WARRANT, tr.OTHER_PURPOSE]),
    ]
    # The purpose ICE tried but was refused is not a category of its own: no category exists
    # because someone queried.
    assert all(OUTSIDE not in c.purposes for c in cats)
    assert len(tr.cell_keys(cats)) == 2 * 3 * len(tr.OUTCOMES)


def test_exact_counts_by_agency_purpose_and_outcome(db: Database, scene: Scene) -> None:
    with db.session() as s:
        cats = tr.categories(s)
        exact = tr.exact_counts(s, scene.month, cats, bound=None)
        clamped = tr.exact_counts(s, scene.month, cats, bound=3)
    nonzero = {k: v for k, v in exact.items() if v}
    assert nonzero == {
        (scene.ice, INVESTIGATION, "ok"): 7,
        (scene.ice, tr.OTHER_PURPOSE, "refused_purpose"): 4,
        (scene.ice, tr.OTHER_PURPOSE, "refused_rate_limit"): 1,
        (scene.fbi, WARRANT, "ok"): 2,
    }
    # Clamping: each account's first 3 reads of the month.
    assert {k: v for k, v in clamped.items() if v} == {
        (scene.ice, INVESTIGATION, "ok"): 3,
        (scene.ice, tr.OTHER_PURPOSE, "refused_purpose"): 3,
        (scene.ice, tr.OTHER_PURPOSE, "refused_rate_limit"): 1,
        (scene.fbi, WARRANT, "ok"): 2,
    }


def test_the_counts_do_not_wait_for_the_integrator(db: Database, scene: Scene) -> None:
    """The month's entries are read by agency and instant (audit.by_actor): the integrator's
    index and the entries it has not reached. A read not integrated yet is counted as it will be
    once integrated, at every step of a batched integration."""
    from openpars.audit import log
    from openpars.audit import repository as audit_repo

    with db.session() as s:
        cats = tr.categories(s)
        assert audit_repo.has_pending(s)
        expected = tr.exact_counts(s, scene.month, cats, bound=None)
        clamped = tr.exact_counts(s, scene.month, cats, bound=3)
    assert sum(expected.values()) == 14
    steps = 0
    while True:
        with db.session() as s:
            assert tr.exact_counts(s, scene.month, cats, bound=None) == expected, steps
            assert tr.exact_counts(s, scene.month, cats, bound=3) == clamped, steps
        with db.session() as s:
            if log.integrate(s, limit=3) == 0:
                break
        steps += 1
    assert steps > 2


def test_a_refusal_through_the_api_is_counted_by_its_class(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    # The window opens before the request, not at the start of the month read afterwards: a
    # refusal at 23:59:59 on the last day of a month is counted even if the clock is read again
    # after midnight.
    before = datetime.now(UTC)
    response = client.get(
        "/api/v1/persons", params={"sid": "X1", "purpose": OUTSIDE}, headers=world.auth("ice-2")
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "purpose_not_allowed"
    now = datetime.now(UTC)
    this_month = tr.Month(label=now.strftime("%Y-%m"), start=before, end=now + timedelta(1))
    with db.session() as s:
        counts = tr.exact_counts(s, this_month, tr.categories(s), bound=None)
    assert counts[(scene.ice, tr.OTHER_PURPOSE, "refused_purpose")] == 1
    # The month has not ended: it cannot be released.
    with pytest.raises(InvalidInput) as refused:
        tr.parse_month(this_month.label)
    assert refused.value.field == "month" and refused.value.code == "month_not_ended"


# ---------------------------------------------------------------------------------------------
# The mechanism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2.0, 50.0])
def test_opendp_noise_has_the_stated_scale(scale: float) -> None:
    """Many draws of the production mechanism: mean 0 and the discrete Laplace variance.

    OpenDP cannot be seeded (its noise is a CSPRNG's), so the bounds are wide: 6 standard
    errors, a false alarm less than once in 10^8 runs; a wrong scale (off by 10%) fails.
    """
    n = 40_000
    draws = tr.opendp_noise(scale)([100] * n)
    noise = [d - 100 for d in draws]
    a = math.exp(-1 / scale)
    variance = 2 * a / (1 - a) ** 2  # of the discrete Laplace with this scale (~ 2 scale^2)
    mean = sum(noise) / n
    sample_var = sum((x - mean) ** 2 for x in noise) / (n - 1)
    assert abs(mean) < 6 * math.sqrt(variance / n)
    # Relative standard error of a sample variance: sqrt((kurtosis - 1) / n), kurtosis ~ 6.
    assert abs(sample_var / variance - 1) < 6 * math.sqrt(5 / n)
    assert all(isinstance(x, int) for x in draws)


def test_opendp_states_epsilon_at_the_bound() -> None:
    assert tr.stated_epsilon(50 / 1.0, 50) == pytest.approx(1.0)
    assert tr.stated_epsilon(20 / 0.5, 20) == pytest.approx(0.5)


def test_released_counts_differ_from_exact_by_noise_of_the_stated_scale(
    db: Database, world: World, scene: Scene
) -> None:
    """With a fixed RNG (a test fixture only): over many releases of the scene's month, the
    noise added to the clamped exact counts has the stated scale, and what is published is
    that noisy count, negatives as 0."""
    settings = _settings(transparency_epsilon=0.5, transparency_contributions=3)
    seeded = seeded_discrete_laplace(20261205)
    raw: list[list[int]] = []

    def factory(scale: float) -> Callable[[list[int]], list[int]]:
        add = seeded(scale)

        def record(counts: list[int]) -> list[int]:
            raw.append(add(counts))
            return raw[-1]

        return record

    with db.session() as s:
        clamped = tr.exact_counts(s, scene.month, tr.categories(s), bound=3)
    truth = list(clamped.values())
    noise: list[int] = []
    for _ in range(200):  # 200 releases of 42 cells, each rolled back to its savepoint
        with db.session() as s:
            nested = s.begin_nested()
            out = tr.release_month(
                s, actor=world.principals["overseer"], month=scene.month.label,
                settings=settings, noise=factory,
            )  # fmt: skip
            nested.rollback()
        assert out.release.privacy.scale == 6.0
        assert [c.count for c in out.release.cells] == [max(0, v) for v in raw[-1]]
        noise.extend(v - t for v, t in zip(raw[-1], truth, strict=True))
    n = len(noise)
    a = math.exp(-1 / 6.0)
    variance = 2 * a / (1 - a) ** 2
    mean = sum(noise) / n
    assert abs(mean) < 6 * math.sqrt(variance / n)
    assert abs(sum((x - mean) ** 2 for x in noise) / (n - 1) / variance - 1) < 0.1


# ---------------------------------------------------------------------------------------------
# Releases, the ledger, the endpoints
# ---------------------------------------------------------------------------------------------


def _release(client: TestClient, world: World, user: str, month: str) -> Any:
    return client.post(
        "/api/v1/oversight/transparency/releases", json={"month": month}, headers=world.auth(user)
    )


def _entries(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_release_once_then_the_stored_one(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    label = scene.month.label
    first = _release(client, world, "overseer", label)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["released_now"] is True
    release = body["release"]
    privacy = release["privacy"]
    assert privacy["epsilon"] == pytest.approx(1.0)
    assert privacy["contributions_bound"] == 50 and privacy["scale"] == 50.0
    assert privacy["delta"] == 0 and "discrete Laplace" in privacy["mechanism"]
    assert privacy["library"].startswith("opendp 0.16")
    assert privacy["releases_before"] == 0 and privacy["epsilon_all_releases"] == 1.0
    assert len(release["cells"]) == 2 * 3 * len(tr.OUTCOMES)
    assert all(c["count"] >= 0 for c in release["cells"])
    # Asking again returns the stored release: same noise, no budget spent, the act audited.
    before = _entries(db)
    again = _release(client, world, "overseer", label)
    assert again.status_code == 200
    assert again.json()["released_now"] is False
    assert again.json()["release"] == release
    assert _entries(db) == before + 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TransparencyRelease)) == 1
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "oversight.transparency.release")
        ).all()
        assert len(actions) == 2
    # The public face: the same document, no token, not audited.
    before = _entries(db)
    public = client.get(f"/api/v1/transparency/releases/{label}")
    assert public.status_code == 200
    assert {k: v for k, v in public.json().items() if k != "audit_entry"} == release
    page = client.get("/api/v1/transparency/releases")
    assert page.status_code == 200
    assert page.json()["total"] == 1 and page.json()["epsilon_all_releases"] == 1.0
    assert [i["month"] for i in page.json()["items"]] == [label]
    assert _entries(db) == before


def test_the_ledger_is_append_only(db: Database, world: World, scene: Scene) -> None:
    with db.session() as s:
        tr.release_month(
            s, actor=world.principals["overseer"], month=scene.month.label, settings=Settings()
        )
    for statement in (
        "UPDATE oversight_transparency_releases SET epsilon = 0.01",
        "DELETE FROM oversight_transparency_releases",
    ):
        with pytest.raises(Exception, match="append-only"), db.session() as s:
            s.execute(text(statement))


def test_budget_accumulates_over_months(db: Database, world: World, scene: Scene) -> None:
    earlier = (scene.month.start - timedelta(days=1)).strftime("%Y-%m")
    overseer = world.principals["overseer"]
    with db.session() as s:
        one = tr.release_month(s, actor=overseer, month=earlier, settings=Settings())
        two = tr.release_month(
            s, actor=overseer, month=scene.month.label,
            settings=Settings(transparency_epsilon=0.25, transparency_contributions=10),
        )  # fmt: skip
        page = tr.ledger(s)
    assert one.release.privacy.epsilon_all_releases == pytest.approx(1.0)
    assert two.release.privacy.scale == 40.0
    assert two.release.privacy.epsilon == pytest.approx(0.25)
    assert two.release.privacy.releases_before == 1
    assert two.release.privacy.epsilon_all_releases == pytest.approx(1.25)
    assert page.epsilon_all_releases == pytest.approx(1.25)
    assert [i.month for i in page.items] == [scene.month.label, earlier]
    # Asking again under other settings changes nothing: the stored release, no budget spent.
    with db.session() as s:
        again = tr.release_month(
            s, actor=overseer, month=earlier,
            settings=Settings(transparency_epsilon=5.0, transparency_contributions=1),
        )  # fmt: skip
        assert again.released_now is False and again.release == one.release
        assert tr.ledger(s).epsilon_all_releases == pytest.approx(1.25)
        second = tr.ledger(s, offset=1, limit=1)
    assert second.total == 2 and [i.month for i in second.items] == [earlier]


def test_the_mechanism_sees_the_clamped_counts_and_negatives_are_published_as_zero(
    db: Database, world: World, scene: Scene
) -> None:
    factory, calls = _noise_recorder()
    settings = Settings(transparency_contributions=3, transparency_epsilon=2.0)
    with db.session() as s:
        clamped = tr.exact_counts(s, scene.month, tr.categories(s), bound=3)
        out = tr.release_month(
            s, actor=world.principals["overseer"], month=scene.month.label, settings=settings,
            noise=factory,
        )  # fmt: skip
    (call,) = calls
    assert call["scale"] == 1.5
    assert call["input"] == list(clamped.values())
    assert [c.count for c in out.release.cells] == [max(0, v) for v in call["output"]]


def test_a_month_not_ended_or_malformed_is_refused(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    this_month = datetime.now(UTC).strftime("%Y-%m")
    for month, code in ((this_month, "month_not_ended"), ("2999-01", "month_not_ended")):
        before = _entries(db)
        response = _release(client, world, "overseer", month)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == ("month", code)
        assert _entries(db) == before + 1  # the refusal's entry only
    for bad in ("2026-13", "26-01", "2026-1"):
        response = _release(client, world, "overseer", bad)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "month"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TransparencyRelease)) == 0


def test_who_may_release_and_who_may_read_exact_figures(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    label = scene.month.label
    for user in ("ice-0", "admin", "reader", "city-voter"):
        assert _release(client, world, user, label).status_code == 403, user
    assert _release(client, world, "overseer", label).status_code == 201
    exact = "/api/v1/oversight/transparency/exact"
    for user in ("ice-0", "ice", "fbi", "admin", "reader", "intake"):
        response = client.get(exact, params={"month": label}, headers=world.auth(user))
        assert response.status_code == 403, user
        assert "cells" not in response.text
    assert client.get(exact, params={"month": label}).status_code == 401
    for user in ("overseer", "city-voter"):
        before = _entries(db)
        response = client.get(exact, params={"month": label}, headers=world.auth(user))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["released"] is True and body["contributions_bound"] == 50
        cell = next(
            c for c in body["cells"]
            if (c["agency_id"], c["purpose"], c["outcome"]) == (scene.ice, INVESTIGATION, "ok")
        )  # fmt: skip
        assert (cell["exact"], cell["clamped"]) == (7, 7)
        assert cell["published"] is not None
        assert _entries(db) == before + 1


def test_the_public_endpoint_reveals_nothing_else(
    client: TestClient, db: Database, world: World, scene: Scene
) -> None:
    label = scene.month.label
    before = _entries(db)
    missing = client.get(f"/api/v1/transparency/releases/{label}")
    assert missing.status_code == 404
    assert _entries(db) == before  # a stranger's request writes nothing
    assert _release(client, world, "overseer", label).status_code == 201
    body = client.get(f"/api/v1/transparency/releases/{label}").json()
    body.pop("audit_entry", None)
    assert set(body) == {"format", "month", "released_at", "privacy", "agencies", "outcomes",
                         "cells"}  # fmt: skip
    text_of = json.dumps(body)
    # No account, person, entry or exact figure: not who released it, not who queried.
    for secret in ("overseer", "ice-0", "ice-1", "NOSUCH1", OUTSIDE, "user", "entry"):
        assert secret not in text_of, secret
    assert {c["agency_id"] for c in body["cells"]} == {scene.ice, scene.fbi}
    # A token changes nothing and is not needed; a malformed month is a 422 naming it.
    assert client.get(f"/api/v1/transparency/releases/{label}",
                      headers=world.auth("ice-0")).json()["cells"] == body["cells"]  # fmt: skip
    bad = client.get("/api/v1/transparency/releases/2026-1")
    assert bad.status_code == 422
    # Counted in the metrics, by route, not in the log.
    metrics = client.get("/metrics", headers=world.auth("admin")).text
    assert 'route="/api/v1/transparency/releases/{month}"' in metrics


# ---------------------------------------------------------------------------------------------
# The console
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def console_site(fresh_db: Database) -> tuple[str, World, tr.Month]:
    """A committed site for the console (which opens its own connections)."""
    assert isinstance(fresh_db.bind, Engine)
    url = fresh_db.bind.url.render_as_string(hide_password=False)
    with fresh_db.session() as s:
        world = build_world(s)
    scene = build_scene(fresh_db, world)
    return url, world, scene.month


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", url])
    return result.exit_code, result.stdout, result.stderr


def test_report_transparency_at_the_console(
    console_site: tuple[str, World, tr.Month], tmp_path: Path
) -> None:
    url, _, month = console_site
    label = month.label
    code, _, err = _run(url, "report", "transparency", "--month", label)
    assert code != 0 and "no transparency report has been released" in err
    code, out, err = _run(url, "report", "transparency", "--month", label, "--release")
    assert code != 0 and "--as" in err
    code, out, err = _run(
        url, "report", "transparency", "--month", label, "--release", "--as", "ice-0"
    )
    assert code != 0 and "oversight:review" in err
    code, out, err = _run(
        url, "report", "transparency", "--month", label, "--release", "--as", "overseer"
    )
    assert code == 0, err
    released = json.loads(out)
    assert released["privacy"]["epsilon"] == pytest.approx(1.0)
    code, out, _ = _run(url, "report", "transparency", "--month", label, "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split(",")[:6] == list(tr.CSV_COLUMNS[:6])
    assert len(lines) == 1 + len(released["cells"])
    page = tmp_path / "report.html"
    code, _, err = _run(
        url, "report", "transparency", "--month", label, "--format", "html", "--output", str(page)
    )
    assert code == 0, err
    document = page.read_text(encoding="utf-8")
    assert "Privacy budget" in document and ICE in document and "epsilon" in document
    # Exact figures: the oversight role, never the outside agency.
    code, out, err = _run(url, "report", "transparency", "--month", label, "--exact",
                          "--as", "ice-0")  # fmt: skip
    assert code != 0 and "exact" in err
    code, out, err = _run(url, "report", "transparency", "--month", label, "--exact",
                          "--as", "overseer")  # fmt: skip
    assert code == 0, err
    cells = json.loads(out)["cells"]
    assert sum(c["exact"] for c in cells) == 14
    # Released again at the console: the stored document, unchanged.
    code, out, _ = _run(
        url, "report", "transparency", "--month", label, "--release", "--as", "overseer"
    )
    assert code == 0 and json.loads(out) == released


def test_two_releases_of_one_month_at_once_publish_it_once(
    console_site: tuple[str, World, tr.Month], fresh_db: Database
) -> None:
    """Two reviewers release the same month at the same moment: one draws the noise, the
    other waits and gets the stored release (PostgreSQL's advisory lock, SQLite's one writer)."""
    _, world, month = console_site
    with fresh_db.session() as s:
        add_user(s, world, "overseer2", "City of Philadelphia", [Role.OVERSIGHT])
    started = threading.Barrier(2)

    def slow(scale: float) -> Callable[[list[int]], list[int]]:
        add = tr.opendp_noise(scale)

        def noisy(counts: list[int]) -> list[int]:
            time.sleep(0.5)  # the other release is waiting meanwhile
            return add(counts)

        return noisy

    def release(user: str) -> tr.ReleaseOutcome:
        started.wait()
        with fresh_db.session() as s:
            return tr.release_month(
                s, actor=world.principals[user], month=month.label, settings=Settings(),
                noise=slow,
            )  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(release, ["overseer", "overseer2"]))
    assert sorted(o.released_now for o in outcomes) == [False, True]
    assert outcomes[0].release == outcomes[1].release
    with fresh_db.session() as s:
        assert s.scalar(select(func.count()).select_from(TransparencyRelease)) == 1
