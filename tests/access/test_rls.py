"""PostgreSQL row-level security binds the external login role to the site floor in force.

Each test reads as a non-superuser role over raw SQL, the way an SQL injection in the external
path would: the external login itself (``<database>_external``), and an ordinary application
role for contrast (RLS never binds a superuser).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openpars.access.policy import ReadPolicy
from openpars.access.rls import create_role
from openpars.access.visibility import ensure_set
from openpars.agreements.floor import DEFAULT_FORBIDDEN_ROLES, SiteFloor, set_floor
from openpars.cli import app as cli_app
from openpars.db import Database, make_engine
from openpars.identity.models import Agency
from openpars.identity.principal import SYSTEM
from openpars.identity.roles import AgencyKind
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.agreements.helpers import decided_floor
from tests.conftest import BACKEND, new_database_url

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="row-level security and database roles are PostgreSQL's"
)


def _role_of(db: Database) -> str:
    with db.session() as s:
        return str(s.execute(text("SELECT openpars_external_role()")).scalar_one())


def _engine_as(db: Database, username: str) -> Engine:
    assert isinstance(db.bind, Engine)
    url = db.bind.url.set(username=username, password=None)
    return make_engine(url.render_as_string(hide_password=False))


@pytest.fixture
def external_engine(fresh_db: Database) -> Iterator[Engine]:
    """Logged in as the database's external role, as openpars logs in for an external read."""
    engine = _engine_as(fresh_db, _role_of(fresh_db))
    yield engine
    engine.dispose()


@pytest.fixture
def app_role_engine(fresh_db: Database) -> Iterator[Engine]:
    """An ordinary application role (unique name: roles are cluster-wide, tests run at once)."""
    role = f"openpars_app_{uuid.uuid4().hex[:8]}"
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
    engine = _engine_as(fresh_db, role)
    yield engine
    engine.dispose()
    with fresh_db.bind.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE {role}")


def _seed(db: Database) -> dict[str, int]:
    """An arrestee, a victim, a person in the role 'other', a juvenile and a sealed arrest."""
    with db.session() as s:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        s.add(agency)
        s.flush()
        arrestee = data.person(s, "Doe", "Arrestee")
        victim = data.person(s, "Doe", "Victim")
        other = data.person(s, "Doe", "Other")
        young = data.person(s, "Doe", "Young")
        sealed = data.person(s, "Doe", "Sealed")
        shown = data.arrest(
            s,
            agency_id=agency.id,
            people=[
                (arrestee, InvolvementRole.ARRESTEE),
                (victim, InvolvementRole.VICTIM),
                (other, InvolvementRole.OTHER),
            ],
        )
        data.arrest(
            s,
            agency_id=agency.id,
            people=[(young, InvolvementRole.ARRESTEE)],
            juvenile=frozenset({young.id}),
        )
        hidden = data.arrest(
            s, agency_id=agency.id, people=[(sealed, InvolvementRole.ARRESTEE)], sealed=True
        )
        # A visibility set as a bug could leave it: every person, victims and sealed included.
        ensure_set(s, ReadPolicy(external=True, include_sealed=True))
        return {"shown": shown.id, "sealed": hidden.id, "victim": victim.id}


def _names(conn: Session | Connection, table: str = "persons") -> list[str]:
    rows = conn.execute(text(f"SELECT given_name FROM {table} ORDER BY given_name"))
    return list(rows.scalars())


def test_external_login_reads_only_what_the_floor_admits(
    fresh_db: Database, external_engine: Engine
) -> None:
    ids = _seed(fresh_db)
    with Session(external_engine) as s, s.begin():
        assert s.execute(text("SELECT current_user")).scalar_one() == _role_of(fresh_db)
        # Raw SQL with no policy of the application's at all: no victim, no juvenile, nothing
        # of the sealed arrest, and the role 'other', which the default floor allows.
        roles = s.execute(text("SELECT role FROM involvements ORDER BY role")).scalars().all()
        assert roles == ["arrestee", "other"]
        assert _names(s) == ["Arrestee", "Other"]
        arrests = s.execute(text("SELECT id FROM arrests")).scalars().all()
        assert ids["shown"] in arrests and ids["sealed"] not in arrests
        charged = s.execute(text("SELECT DISTINCT arrest_id FROM charges")).scalars().all()
        assert ids["sealed"] not in charged
        # A set's copy of a person is held to the same floor, whatever the set holds.
        # (The set's rows carry no names: compare them by person id with the persons shown.)
        copies = set(s.execute(text("SELECT person_id FROM visible_persons")).scalars())
        shown = set(s.execute(text("SELECT id FROM persons")).scalars())
        assert len(shown) == 2 and copies == shown
        # Asking for a hidden row by its id is the same as asking for a missing one.
        victim = s.execute(text("SELECT * FROM persons WHERE id = :id"), {"id": ids["victim"]})
        assert victim.all() == []


def test_a_role_the_floor_newly_forbids_disappears_in_the_same_transaction(
    fresh_db: Database, external_engine: Engine
) -> None:
    _seed(fresh_db)
    role = _role_of(fresh_db)
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            floor = SiteFloor(forbidden_roles=DEFAULT_FORBIDDEN_ROLES | {InvolvementRole.OTHER})
            set_floor(s, actor=SYSTEM, floor=floor, reason="no third parties at all")
            s.commit()
        # Still uncommitted: the floor change binds its own transaction already.
        conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
        assert _names(conn) == ["Arrestee"]
        outer.rollback()
    # Rolled back: the shipped floor again.
    with Session(external_engine) as s, s.begin():
        assert _names(s) == ["Arrestee", "Other"]
    with fresh_db.session() as s:
        floor = SiteFloor(forbidden_roles=DEFAULT_FORBIDDEN_ROLES | {InvolvementRole.OTHER})
        set_floor(s, actor=SYSTEM, floor=floor, reason="no third parties at all")
    with Session(external_engine) as s, s.begin():
        assert _names(s) == ["Arrestee"]
        assert s.execute(text("SELECT count(*) FROM visible_persons")).scalar_one() == 1
    # A floor that admits juveniles lets the backstop show them; victims stay hidden.
    with fresh_db.session() as s:
        decided_floor(s, SiteFloor(forbid_juveniles=False), "juvenile records under court order")
    with Session(external_engine) as s, s.begin():
        assert _names(s) == ["Arrestee", "Other", "Young"]


def test_external_login_cannot_change_records_audit_or_the_floor(
    fresh_db: Database, external_engine: Engine
) -> None:
    ids = _seed(fresh_db)
    refused = [
        ("UPDATE persons SET family_name = 'X'", "permission denied"),
        ("DELETE FROM involvements", "permission denied"),
        ("UPDATE arrests SET sealed_at = NULL", "permission denied"),
        (f"DELETE FROM arrests WHERE id = {ids['shown']}", "permission denied"),
        ("INSERT INTO persons (family_name) VALUES ('X')", "permission denied"),
        ("UPDATE audit_entries SET action = 'x'", "permission denied"),
        ("DELETE FROM audit_entries", "permission denied"),
        ("INSERT INTO site_floor_versions (version) VALUES (99)", "permission denied"),
        # What an external read never needs: other tables, the audit contents, tokens.
        ("SELECT * FROM record_versions", "permission denied"),
        ("SELECT content FROM audit_entries", "permission denied"),
        ("SELECT salt FROM audit_entries", "permission denied"),
        ("UPDATE audit_entries SET salt = NULL, content = NULL", "permission denied"),
        ("SELECT commitment FROM audit_entries", "permission denied"),
        # The subject index is the integrator's (the owner's): the role appends no row to it
        # and reads none of it (which entries named whom).
        ("SELECT * FROM audit_person_entries", "permission denied"),
        ("INSERT INTO audit_person_entries VALUES (1, 1)", "permission denied"),
        ("SELECT * FROM audit_arrest_entries", "permission denied"),
        ("INSERT INTO audit_arrest_entries VALUES (1, 1)", "permission denied"),
        ("SELECT person_ids FROM audit_entries", "permission denied"),
        ("SELECT arrest_ids FROM audit_entries", "permission denied"),
        ("SELECT token_hash FROM api_tokens", "permission denied"),
        ("SELECT * FROM users", "permission denied"),
        # Nor can it switch the backstop off or become someone else.
        ("ALTER TABLE persons DISABLE ROW LEVEL SECURITY", "must be owner"),
        ("DROP POLICY persons_floor ON persons", "must be owner"),
        ("SET ROLE postgres", "permission denied"),
    ]
    for statement, message in refused:
        with (
            Session(external_engine) as s,
            s.begin(),
            pytest.raises(DBAPIError, match=message),
        ):
            s.execute(text(statement))
    # Share-locking the grantee's agreements goes through the owner's function only.
    with (
        Session(external_engine) as s,
        s.begin(),
        pytest.raises(DBAPIError, match="permission denied"),
    ):
        s.execute(text("SELECT id FROM agreements FOR SHARE"))
    with Session(external_engine) as s, s.begin():
        assert s.execute(text("SELECT openpars_share_lock_agreements(1)")).scalar_one() == 0


def test_the_flag_alone_changes_nothing(
    fresh_db: Database, external_engine: Engine, app_role_engine: Engine
) -> None:
    _seed(fresh_db)
    for value in ("on", "off", ""):
        with Session(app_role_engine) as s, s.begin():
            s.execute(text("SELECT set_config('openpars.external', :v, true)"), {"v": value})
            # The application's role sees every row, whatever the old flag says.
            assert _names(s) == ["Arrestee", "Other", "Sealed", "Victim", "Young"]
        with Session(external_engine) as s, s.begin():
            s.execute(text("SELECT set_config('openpars.external', :v, true)"), {"v": value})
            assert _names(s) == ["Arrestee", "Other"]


def test_a_login_row_level_security_would_not_bind_is_refused(fresh_db: Database) -> None:
    assert isinstance(fresh_db.bind, Engine)
    superuser = fresh_db.bind.url.render_as_string(hide_password=False)
    db = Database(fresh_db.bind, external_url=superuser)
    try:
        with (
            pytest.raises(RuntimeError, match="row-level security would not bind"),
            db.session(external=True) as s,
        ):
            s.execute(text("SELECT 1"))
    finally:
        db.dispose()


def test_creating_the_role_twice_at_once_is_safe(fresh_db: Database) -> None:
    role = _role_of(fresh_db)
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE {role}")
    errors: list[BaseException] = []

    def create(conn: Any) -> None:
        try:
            conn.exec_driver_sql(create_role())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with fresh_db.bind.connect() as first, fresh_db.bind.connect() as second:
        first.begin()
        create(first)  # holds the new role, uncommitted
        second.begin()
        worker = threading.Thread(target=create, args=(second,))
        worker.start()
        worker.join(timeout=1)
        assert worker.is_alive(), "the second creation should wait for the first"
        first.commit()
        worker.join(timeout=30)
        second.commit()
    assert errors == []
    with fresh_db.bind.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role})
        assert count.scalar_one() == 1


def test_create_all_grants_the_role_reads_only_behind_policies(fresh_db: Database) -> None:
    # create_all: on the record tables the role may only read, each behind its floor policy.
    role = _role_of(fresh_db)
    with fresh_db.session() as s:
        grants = s.execute(
            text(
                "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = :r AND table_name IN ('persons', 'arrests', 'involvements')"
            ),
            {"r": role},
        ).scalars()
        assert set(grants) == {"SELECT"}
        policies = s.execute(
            text("SELECT count(*) FROM pg_policies WHERE :r = ANY(roles)"), {"r": role}
        ).scalar_one()
        assert policies == 10
        # Nothing at all on the integrator's subject index.
        index_grants = s.execute(
            text(
                "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = :r "
                "AND table_name IN ('audit_person_entries', 'audit_arrest_entries')"
            ),
            {"r": role},
        ).scalar_one()
        assert index_grants == 0


def test_openpars_db_upgrade_sets_up_the_role_and_its_policies(tmp_path: Path) -> None:
    url, drop = new_database_url(tmp_path)
    try:
        result = CliRunner().invoke(cli_app, ["db", "upgrade", "--db", url])
        assert result.exit_code == 0, result.output
        migrated = Database(make_engine(url))
        with migrated.session() as s:
            s.add(Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000"))
            s.flush()
            agency = s.execute(text("SELECT id FROM agencies")).scalar_one()
            arrestee = data.person(s, "Doe", "Arrestee")
            victim = data.person(s, "Doe", "Victim")
            data.arrest(
                s,
                agency_id=agency,
                people=[(arrestee, InvolvementRole.ARRESTEE), (victim, InvolvementRole.VICTIM)],
            )
        # The way openpars reads for an external caller: the second login, found by default.
        with migrated.session(external=True) as s:
            assert s.execute(text("SELECT current_user")).scalar_one() == _role_of(migrated)
            assert _names(s) == ["Arrestee"]
            with pytest.raises(DBAPIError, match="permission denied"):
                s.execute(text("DELETE FROM persons"))
        migrated.dispose()
    finally:
        drop()  # type: ignore[operator]
