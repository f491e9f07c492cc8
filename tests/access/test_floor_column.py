"""persons.floor_visible, the column the external role's persons policy reads (access/rls.py),
and its copy on every visibility-set row (visible_persons.floor_visible), which that table's
policy reads.

The policy trusts a column instead of proving the floor again for every row, so the column is
attacked here the way a bug or a race would break it: random sequences of every change it
depends on (involvements inserted, updated and deleted, several rows a statement, their role,
juvenile flag, person and arrest; arrests sealed, unsealed, expunged; site floor versions
tightening and loosening; several kinds in one transaction), and after each one the column is
compared, person by person, with the floor computed here in Python from the base tables, and
what the external login reads through every table with what that floor admits. Concurrent
writers are interleaved by hand on the locks the triggers take. Nobody but the triggers may
write the column: the external login has no privilege, the application's statements are
refused.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from openpars.access.policy import ReadPolicy
from openpars.access.visibility import ensure_set
from openpars.agreements.floor import DEFAULT_FORBIDDEN_ROLES, SiteFloor, store_floor
from openpars.db import Database, make_engine
from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="row-level security and its floor column are PostgreSQL's"
)

ROLES = [role.value for role in InvolvementRole]
WHEN = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def external_engine(fresh_db: Database) -> Iterator[Engine]:
    """Logged in as the database's external role, as openpars logs in for an external read."""
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.connect() as conn:
        role = conn.execute(text("SELECT openpars_external_role()")).scalar_one()
    url = fresh_db.bind.url.set(username=role, password=None)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


@dataclass
class World:
    persons: list[int]
    arrests: list[int]


def _seed(db: Database, rng: random.Random, persons: int = 10, arrests: int = 6) -> World:
    with db.session() as s:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        s.add(agency)
        s.flush()
        people = [data.person(s, "Doe", f"P{i:02d}") for i in range(persons)]
        made = []
        for _ in range(arrests):
            chosen = rng.sample(people, rng.randint(1, 3))
            pairs = [(p, InvolvementRole(rng.choice(ROLES))) for p in chosen]
            juvenile = frozenset(p.id for p in chosen if rng.random() < 0.3)
            made.append(
                data.arrest(
                    s,
                    agency_id=agency.id,
                    people=pairs,
                    juvenile=juvenile,
                    sealed=rng.random() < 0.2,
                )
            )
        for p in people[::3]:
            s.execute(
                text(
                    "INSERT INTO person_aliases (person_id, family_name, given_name, name_key) "
                    "VALUES (:p, 'Alias', 'A', 'alias a')"
                ),
                {"p": p.id},
            )
        # A set as a bug could leave it (every person with any involvement, sealed included):
        # what the external login reads of it is the policy's doing alone.
        ensure_set(s, ReadPolicy(external=True, include_sealed=True))
        return World([p.id for p in people], [a.id for a in made])


# --- the floor, computed here from the base tables ---------------------------------------


def _floor(conn: Connection) -> tuple[set[str], bool]:
    content = conn.execute(
        text("SELECT content FROM site_floor_versions ORDER BY version DESC LIMIT 1")
    ).scalar()
    floor = SiteFloor.model_validate(content) if content is not None else SiteFloor()
    return {str(r) for r in floor.forbidden_roles}, floor.forbid_juveniles


@dataclass
class Expected:
    floor_visible: dict[int, bool]
    involvements: set[int]
    arrests: set[int]


def _expected(conn: Connection) -> Expected:
    forbidden, forbid_juveniles = _floor(conn)
    open_arrests = {
        row.id
        for row in conn.execute(text("SELECT id, sealed_at, expunged_at FROM arrests"))
        if row.sealed_at is None and row.expunged_at is None
    }
    shown_involvements: set[int] = set()
    visible: dict[int, bool] = {
        pid: False for pid in conn.execute(text("SELECT id FROM persons")).scalars()
    }
    for row in conn.execute(
        text("SELECT id, person_id, arrest_id, role, juvenile FROM involvements")
    ):
        adult_enough = row.juvenile is False or not forbid_juveniles
        if row.role not in forbidden and adult_enough and row.arrest_id in open_arrests:
            shown_involvements.add(row.id)
            visible[row.person_id] = True
    return Expected(visible, shown_involvements, open_arrests)


def _check(db: Database, external: Engine) -> None:
    """The column equals the floor for every person; the external login reads exactly it."""
    assert isinstance(db.bind, Engine)
    with db.bind.connect() as conn:
        expected = _expected(conn)
        column = {
            r.id: r.floor_visible
            for r in conn.execute(text("SELECT id, floor_visible FROM persons"))
        }
        in_sets = set(conn.execute(text("SELECT person_id FROM visible_persons")).scalars())
        aliased = set(conn.execute(text("SELECT person_id FROM person_aliases")).scalars())
        copies = conn.execute(
            text("SELECT person_id, set_id, floor_visible FROM visible_persons")
        ).all()
    assert column == expected.floor_visible
    # Every set row carries its person's verdict (what the set's policy reads).
    assert {(r.person_id, r.set_id): r.floor_visible for r in copies} == {
        (r.person_id, r.set_id): expected.floor_visible[r.person_id] for r in copies
    }
    admitted = {pid for pid, shown in expected.floor_visible.items() if shown}
    with Session(external) as s, s.begin():

        def ids(sql: str) -> set[int]:
            return set(s.execute(text(sql)).scalars())

        assert ids("SELECT id FROM persons") == admitted
        assert ids("SELECT person_id FROM visible_persons") == in_sets & admitted
        assert ids("SELECT person_id FROM person_aliases") == aliased & admitted
        assert ids("SELECT id FROM involvements") == expected.involvements
        assert ids("SELECT id FROM arrests") == expected.arrests
        # Asked for by the column itself: nothing more.
        assert ids("SELECT id FROM persons WHERE floor_visible OR NOT floor_visible") == admitted
        assert (
            ids("SELECT person_id FROM visible_persons WHERE floor_visible OR NOT floor_visible")
            == in_sets & admitted
        )
        assert ids("SELECT person_id FROM visible_persons WHERE NOT floor_visible") == set()
        # A set read alone, counted, or joined to anything but persons: the same persons.
        assert (
            ids(
                "SELECT v.person_id FROM visible_persons v "
                "LEFT JOIN person_aliases a ON a.person_id = v.person_id"
            )
            == in_sets & admitted
        )


# --- the mutations -------------------------------------------------------------------------

Mutation = Callable[[Session, random.Random, World], None]


def _some(rng: random.Random, items: list[int], most: int = 3) -> list[int]:
    return rng.sample(items, min(len(items), rng.randint(1, most)))


def _involvement_ids(s: Session) -> list[int]:
    return list(s.execute(text("SELECT id FROM involvements ORDER BY id")).scalars())


def insert_involvements(s: Session, rng: random.Random, world: World) -> None:
    rows = [
        {
            "a": rng.choice(world.arrests),
            "p": rng.choice(world.persons),
            "r": rng.choice(ROLES),
            "j": rng.choice([True, False, None]),
        }
        for _ in range(rng.randint(1, 3))
    ]
    values = ", ".join(f"(:a{i}, :p{i}, :r{i}, :j{i})" for i in range(len(rows)))
    params = {f"{k}{i}": v for i, row in enumerate(rows) for k, v in row.items()}
    s.execute(
        text(
            f"INSERT INTO involvements (arrest_id, person_id, role, juvenile) VALUES {values} "
            "ON CONFLICT DO NOTHING"
        ),
        params,
    )


def update_involvements(s: Session, rng: random.Random, world: World) -> None:
    ids = _involvement_ids(s)
    if not ids:
        return
    column, value = rng.choice(
        [
            ("role", rng.choice(ROLES)),
            ("juvenile", rng.choice([True, False, None])),
            ("person_id", rng.choice(world.persons)),
            ("arrest_id", rng.choice(world.arrests)),
        ]
    )
    s.execute(
        text(f"UPDATE involvements SET {column} = :v WHERE id = ANY(:ids)"),
        {"v": value, "ids": _some(rng, ids, 2 if column in ("person_id", "arrest_id") else 4)},
    )


def delete_involvements(s: Session, rng: random.Random, world: World) -> None:
    ids = _involvement_ids(s)
    if ids:
        s.execute(text("DELETE FROM involvements WHERE id = ANY(:ids)"), {"ids": _some(rng, ids)})


def change_arrests(s: Session, rng: random.Random, world: World) -> None:
    change = rng.choice(
        [
            "sealed_at = :at",
            "sealed_at = NULL",
            "expunged_at = :at",
            "expunged_at = NULL",
            "sealed_at = NULL, expunged_at = NULL",
            # Not an input of the floor: nothing may change.
            "narrative = 'amended'",
        ]
    )
    s.execute(
        text(f"UPDATE arrests SET {change} WHERE id = ANY(:ids)"),
        {"at": WHEN, "ids": _some(rng, world.arrests)},
    )


def change_floor(s: Session, rng: random.Random, world: World) -> None:
    roles = frozenset(InvolvementRole(r) for r in ROLES if rng.random() < 0.4)
    floor = SiteFloor(forbidden_roles=roles, forbid_juveniles=rng.random() < 0.5)
    store_floor(s, floor=floor, changed_by="test", changed_by_id=None, reason="random floor")


def change_persons(s: Session, rng: random.Random, world: World) -> None:
    # Not an input either: a person's own columns, and a new person with nothing yet.
    s.execute(
        text("UPDATE persons SET phone = :ph WHERE id = ANY(:ids)"),
        {"ph": f"215-555-{rng.randint(1000, 9999)}", "ids": _some(rng, world.persons)},
    )
    world.persons.append(data.person(s, "Roe", f"New{len(world.persons)}").id)


MUTATIONS: list[Mutation] = [
    insert_involvements,
    update_involvements,
    delete_involvements,
    change_arrests,
    change_floor,
    change_persons,
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_column_is_the_floor_after_every_change(
    fresh_db: Database, external_engine: Engine, seed: int
) -> None:
    rng = random.Random(seed)
    world = _seed(fresh_db, rng)
    _check(fresh_db, external_engine)
    applied = 0
    for _ in range(70):
        # One change, or several kinds in one transaction (each statement sees the last).
        steps = [rng.choice(MUTATIONS) for _ in range(1 if rng.random() < 0.6 else 3)]
        try:
            with fresh_db.session() as s:
                for step in steps:
                    step(s, rng, world)
        except IntegrityError:
            continue  # an update that would duplicate an involvement: rolled back whole
        applied += 1
        _check(fresh_db, external_engine)
    assert applied > 50


def test_a_new_floor_recomputes_every_person_in_its_own_transaction(
    fresh_db: Database, external_engine: Engine
) -> None:
    world = _seed(fresh_db, random.Random(9))
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM persons WHERE floor_visible")).scalar()
    everyone = SiteFloor(forbidden_roles=frozenset(), forbid_juveniles=False)
    with fresh_db.bind.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            store_floor(s, floor=everyone, changed_by="test", changed_by_id=None, reason="all")
            s.commit()
        # Not committed yet: the column already follows the new floor in this transaction.
        shown = conn.execute(text("SELECT count(*) FROM persons WHERE floor_visible")).scalar()
        assert shown > before
        outer.rollback()
    _check(fresh_db, external_engine)

    def sets() -> tuple[int, int]:
        with fresh_db.session() as s:
            kept = s.execute(text("SELECT count(*) FROM visible_persons")).scalar_one()
            return kept, s.execute(text("SELECT count(*) FROM visibility_pending")).scalar_one()

    kept = sets()
    for floor in (everyone, SiteFloor(forbidden_roles=DEFAULT_FORBIDDEN_ROLES), SiteFloor()):
        with fresh_db.session() as s:
            store_floor(s, floor=floor, changed_by="test", changed_by_id=None, reason="floor")
        _check(fresh_db, external_engine)
        # The recompute changes the column alone: no person leaves a visibility set for it.
        assert sets() == kept
    assert world.persons


# --- nobody else writes it -----------------------------------------------------------------


def test_the_external_login_cannot_write_the_column(
    fresh_db: Database, external_engine: Engine
) -> None:
    world = _seed(fresh_db, random.Random(4))
    for statement in (
        "UPDATE persons SET floor_visible = true",
        f"UPDATE persons SET floor_visible = true WHERE id = {world.persons[0]}",
        "INSERT INTO persons (family_name, given_name, name_key, floor_visible, version, "
        "created_at, updated_at) VALUES ('X', 'Y', 'x y', true, 1, now(), now())",
    ):
        with (
            pytest.raises(DBAPIError, match="permission denied"),
            Session(external_engine) as s,
            s.begin(),
        ):
            s.execute(text(statement))
    _check(fresh_db, external_engine)


def test_the_application_cannot_write_the_column(
    fresh_db: Database, external_engine: Engine
) -> None:
    _seed(fresh_db, random.Random(5))
    with fresh_db.session() as s:
        hidden = list(s.execute(text("SELECT id FROM persons WHERE NOT floor_visible")).scalars())
    assert hidden
    for statement in (
        "UPDATE persons SET floor_visible = true WHERE id = ANY(:ids)",
        "UPDATE persons SET floor_visible = NOT floor_visible",
        "INSERT INTO persons (family_name, given_name, name_key, floor_visible, version, "
        "created_at, updated_at) VALUES ('X', 'Y', 'x y', true, 1, now(), now())",
    ):
        with pytest.raises(DBAPIError, match="kept by the database"), fresh_db.session() as s:
            s.execute(text(statement), {"ids": hidden})
    # Written to what it already is, it is no change: an ordinary update of a person passes.
    with fresh_db.session() as s:
        s.execute(text("UPDATE persons SET floor_visible = floor_visible, phone = '1'"))
    _check(fresh_db, external_engine)


# --- concurrent writers ----------------------------------------------------------------------


def _in_thread(engine: Engine, statements: list[tuple[str, dict[str, Any]]]) -> threading.Thread:
    """Run statements in one transaction on a thread; the caller checks that it waits."""

    def run() -> None:
        with engine.begin() as conn:
            for sql, params in statements:
                conn.execute(text(sql), params)

    worker = threading.Thread(target=run)
    worker.start()
    return worker


def _waits_then_finishes(worker: threading.Thread, release: Callable[[], None]) -> None:
    worker.join(timeout=1)
    assert worker.is_alive(), "the second writer should wait for the first"
    release()
    worker.join(timeout=30)
    assert not worker.is_alive()


def _lone_arrest(db: Database) -> tuple[int, int]:
    """An open arrest and a person with no involvement at all."""
    with db.session() as s:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        s.add(agency)
        s.flush()
        other = data.person(s, "Doe", "Other")
        arrest = data.arrest(s, agency_id=agency.id, people=[(other, InvolvementRole.ARRESTEE)])
        newcomer = data.person(s, "Doe", "Newcomer")
        return arrest.id, newcomer.id


_ADD = (
    "INSERT INTO involvements (arrest_id, person_id, role, juvenile) "
    "VALUES (:a, :p, 'arrestee', false)"
)
_SEAL = "UPDATE arrests SET sealed_at = now() WHERE id = :a"


@pytest.mark.parametrize(
    "seal_first",
    [
        # The seal first, uncommitted: the new involvement's recompute must wait for it, or it
        # would compute "visible" from a snapshot where the arrest is still open.
        pytest.param(True, id="involvement-added-while-arrest-being-sealed"),
        # The involvement first, uncommitted: the seal must see it once it commits.
        pytest.param(False, id="arrest-sealed-while-involvement-being-added"),
    ],
)
def test_a_seal_and_a_new_involvement_in_flight_together_leave_the_person_hidden(
    fresh_db: Database, external_engine: Engine, seal_first: bool
) -> None:
    arrest, newcomer = _lone_arrest(fresh_db)
    seal, add = (_SEAL, {"a": arrest}), (_ADD, {"a": arrest, "p": newcomer})
    first_statement, second_statement = (seal, add) if seal_first else (add, seal)
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.connect() as first:
        tx = first.begin()
        first.execute(text(first_statement[0]), first_statement[1])
        worker = _in_thread(fresh_db.bind, [second_statement])
        _waits_then_finishes(worker, tx.commit)
    _check(fresh_db, external_engine)


@pytest.mark.parametrize("floor_first", [True, False])
def test_a_floor_change_and_a_concurrent_writer_end_on_the_new_floor(
    fresh_db: Database, external_engine: Engine, floor_first: bool
) -> None:
    # A tighter floor (arrestees forbidden) against an arrestee added at the same time: the
    # writer must not commit a value computed under the old floor after the recompute.
    arrest, newcomer = _lone_arrest(fresh_db)
    tighter = SiteFloor(forbidden_roles=DEFAULT_FORBIDDEN_ROLES | {InvolvementRole.ARRESTEE})
    assert isinstance(fresh_db.bind, Engine)
    floor_row = (
        "INSERT INTO site_floor_versions (version, content, content_hash, changed_by, "
        "changed_at, reason) VALUES (2, CAST(:c AS jsonb), 'x', 'test', now(), 'tighter')"
    )
    floor_params = {"c": tighter.model_dump_json()}
    with fresh_db.bind.connect() as first:
        tx = first.begin()
        if floor_first:
            first.execute(text(floor_row), floor_params)
            worker = _in_thread(fresh_db.bind, [(_ADD, {"a": arrest, "p": newcomer})])
        else:
            first.execute(text(_ADD), {"a": arrest, "p": newcomer})
            worker = _in_thread(fresh_db.bind, [(floor_row, floor_params)])
        _waits_then_finishes(worker, tx.commit)
    _check(fresh_db, external_engine)
    with Session(external_engine) as s, s.begin():
        assert s.execute(text("SELECT count(*) FROM persons")).scalar_one() == 0


def test_two_writers_removing_a_persons_last_two_involvements_leave_it_hidden(
    fresh_db: Database, external_engine: Engine
) -> None:
    # Each writer alone would compute "still visible through the other involvement" from its
    # own snapshot; the person's lock makes the second compute after the first commits.
    with fresh_db.session() as s:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        s.add(agency)
        s.flush()
        twice = data.person(s, "Doe", "Twice")
        for _ in range(2):
            data.arrest(s, agency_id=agency.id, people=[(twice, InvolvementRole.ARRESTEE)])
        involvements = list(
            s.execute(
                text("SELECT id FROM involvements WHERE person_id = :p ORDER BY id"),
                {"p": twice.id},
            ).scalars()
        )
    delete = "DELETE FROM involvements WHERE id = :i"
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.connect() as first:
        tx = first.begin()
        first.execute(text(delete), {"i": involvements[0]})
        worker = _in_thread(fresh_db.bind, [(delete, {"i": involvements[1]})])
        _waits_then_finishes(worker, tx.commit)
    _check(fresh_db, external_engine)
    with Session(external_engine) as s, s.begin():
        assert s.execute(text("SELECT count(*) FROM persons")).scalar_one() == 0


def test_a_truncate_of_an_input_recomputes_everyone(
    fresh_db: Database, external_engine: Engine
) -> None:
    # TRUNCATE fires no DELETE trigger: a truncated floor falls back to the shipped defaults,
    # truncated involvements admit nobody.
    _seed(fresh_db, random.Random(6))
    with fresh_db.session() as s:
        everyone = SiteFloor(forbidden_roles=frozenset(), forbid_juveniles=False)
        store_floor(s, floor=everyone, changed_by="test", changed_by_id=None, reason="all")
    _check(fresh_db, external_engine)
    for table in ("site_floor_versions", "involvements"):
        with fresh_db.session() as s:
            s.execute(text(f"TRUNCATE {table} CASCADE"))
        _check(fresh_db, external_engine)
    with Session(external_engine) as s, s.begin():
        assert s.execute(text("SELECT count(*) FROM persons")).scalar_one() == 0


# --- the sets' copies of the column -------------------------------------------------------


def _set_row_of(db: Database, person: int) -> dict[str, Any]:
    with db.session() as s:
        row = s.execute(
            text("SELECT * FROM visible_persons WHERE person_id = :p LIMIT 1"), {"p": person}
        ).one()
        return dict(row._mapping)


def test_nobody_writes_a_set_rows_floor_flag_but_the_recompute(
    fresh_db: Database, external_engine: Engine
) -> None:
    _seed(fresh_db, random.Random(5))
    with fresh_db.session() as s:
        hidden = list(
            s.execute(
                text(
                    "SELECT v.person_id FROM visible_persons v JOIN persons p "
                    "ON p.id = v.person_id WHERE NOT p.floor_visible"
                )
            ).scalars()
        )
        shown = list(s.execute(text("SELECT id FROM persons WHERE floor_visible")).scalars())
    assert len(hidden) >= 2 and shown
    # The external login may not write a set at all.
    for statement in (
        "UPDATE visible_persons SET floor_visible = true",
        "DELETE FROM visible_persons",
        "INSERT INTO visible_persons (person_id, set_id, name_key, floor_visible) "
        f"SELECT {hidden[0]}, id, 'x', true FROM visibility_sets",
    ):
        with (
            pytest.raises(DBAPIError, match="permission denied"),
            Session(external_engine) as s,
            s.begin(),
        ):
            s.execute(text(statement))
    # The application's statements: a copy that is not its person's is refused, either way.
    row = _set_row_of(fresh_db, hidden[0])
    with fresh_db.session() as s:
        # Room in the set for a hidden person's row and a shown person's.
        s.execute(
            text("DELETE FROM visible_persons WHERE person_id IN (:p, :q)"),
            {"p": hidden[-1], "q": shown[0]},
        )
    for statement, params in (
        ("UPDATE visible_persons SET floor_visible = true WHERE person_id = ANY(:ids)", {}),
        ("UPDATE visible_persons SET floor_visible = NOT floor_visible", {}),
        # Moved onto another person with its verdict left behind.
        ("UPDATE visible_persons SET person_id = :other WHERE person_id = :one", {}),
        (
            "INSERT INTO visible_persons (person_id, set_id, name_key, floor_visible) "
            "SELECT id, :set, name_key, true FROM persons WHERE id = :last",
            {"set": row["set_id"]},
        ),
        (
            "INSERT INTO visible_persons (person_id, set_id, name_key, floor_visible) "
            "SELECT id, :set, name_key, false FROM persons WHERE id = :shown",
            {"set": row["set_id"]},
        ),
    ):
        with pytest.raises(DBAPIError, match="copy it from the person"), fresh_db.session() as s:
            s.execute(
                text(statement),
                {
                    "ids": hidden,
                    "one": hidden[0],
                    "last": hidden[-1],
                    "other": shown[0],
                    "shown": shown[0],
                }
                | params,
            )
    # Copied from the person, it passes (what access.visibility writes).
    with fresh_db.session() as s:
        s.execute(text("UPDATE visible_persons SET name_key = name_key"))
    _check(fresh_db, external_engine)


@pytest.mark.parametrize(
    "set_row_first",
    [
        # The set row first, uncommitted: the recompute must wait for it, then rewrite it.
        pytest.param(True, id="set-row-inserted-while-floor-tightens"),
        # The tighter floor first, uncommitted: the set row copied from before it is refused.
        pytest.param(False, id="floor-tightens-while-set-row-inserted"),
    ],
)
@pytest.mark.parametrize("change", ["floor", "involvement"])
def test_a_set_row_written_while_its_person_is_recomputed_is_never_left_shown(
    fresh_db: Database, external_engine: Engine, set_row_first: bool, change: str
) -> None:
    # A writer that copies the person's verdict without taking the person's lock first (as
    # access.visibility does: a bug could forget it) races a change that hides the person.
    arrest, newcomer = _lone_arrest(fresh_db)
    with fresh_db.session() as s:
        s.execute(text(_ADD), {"a": arrest, "p": newcomer})
        ensure_set(s, ReadPolicy(external=True, include_sealed=True))
    row = _set_row_of(fresh_db, newcomer)
    assert row["floor_visible"] is True
    with fresh_db.session() as s:
        s.execute(text("DELETE FROM visible_persons WHERE person_id = :p"), {"p": newcomer})
    copy = (
        "INSERT INTO visible_persons (person_id, set_id, name_key, floor_visible) "
        "SELECT id, :set, name_key, floor_visible FROM persons WHERE id = :p",
        {"set": row["set_id"], "p": newcomer},
    )
    if change == "floor":
        tighter = SiteFloor(forbidden_roles=DEFAULT_FORBIDDEN_ROLES | {InvolvementRole.ARRESTEE})
        hide = (
            "INSERT INTO site_floor_versions (version, content, content_hash, changed_by, "
            "changed_at, reason) VALUES (2, CAST(:c AS jsonb), 'x', 'test', now(), 'tighter')",
            {"c": tighter.model_dump_json()},
        )
    else:
        hide = ("DELETE FROM involvements WHERE person_id = :p", {"p": newcomer})
    first_statement, second_statement = (copy, hide) if set_row_first else (hide, copy)
    assert isinstance(fresh_db.bind, Engine)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with fresh_db.bind.begin() as conn:  # type: ignore[union-attr]
                conn.execute(text(second_statement[0]), second_statement[1])
        except DBAPIError as exc:
            errors.append(exc)

    with fresh_db.bind.connect() as first:
        tx = first.begin()
        first.execute(text(first_statement[0]), first_statement[1])
        worker = threading.Thread(target=run)
        worker.start()
        _waits_then_finishes(worker, tx.commit)
    if set_row_first:
        assert not errors
    else:
        # Copied from the verdict of before the change, refused once the change committed.
        assert len(errors) == 1 and "copy it from the person" in str(errors[0])
    _check(fresh_db, external_engine)
    with Session(external_engine) as s, s.begin():
        found = s.execute(
            text("SELECT count(*) FROM visible_persons WHERE person_id = :p"), {"p": newcomer}
        )
        assert found.scalar_one() == 0
