"""PostgreSQL row-level security holds even when application SQL forgets the policy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from openpars.access.policy import ReadPolicy
from openpars.access.rls import mark_external
from openpars.access.visibility import ensure_set
from openpars.db import Database, make_engine
from openpars.identity.models import Agency
from openpars.identity.roles import AgencyKind
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="row-level security is PostgreSQL's"
)


@pytest.fixture
def app_role_engine(fresh_db: Database) -> Iterator[Engine]:
    """An engine connecting as an ordinary role (RLS does not bind superusers)."""
    role = f"openpars_app_{uuid.uuid4().hex[:8]}"
    assert isinstance(fresh_db.bind, Engine)
    with fresh_db.bind.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
    url = fresh_db.bind.url.set(username=role)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with fresh_db.bind.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE {role}")


def test_rls_hides_floor_roles_and_sealed_from_raw_sql(
    fresh_db: Database, app_role_engine: Engine
) -> None:
    with fresh_db.session() as s:
        agency = Agency(name="Police", kind=AgencyKind.POLICE, ori="PAPEP0000")
        s.add(agency)
        s.flush()
        arrestee = data.person(s, "Doe", "Arrestee")
        victim = data.person(s, "Doe", "Victim")
        sealed = data.person(s, "Doe", "Sealed")
        data.arrest(
            s,
            agency_id=agency.id,
            people=[(arrestee, InvolvementRole.ARRESTEE), (victim, InvolvementRole.VICTIM)],
        )
        data.arrest(
            s, agency_id=agency.id, people=[(sealed, InvolvementRole.ARRESTEE)], sealed=True
        )
        # A visibility set as a bug could leave it: every person, victims and sealed included.
        ensure_set(s, ReadPolicy(external=True, include_sealed=True))
        arrestee_id = arrestee.id
    with Session(app_role_engine) as s, s.begin():
        # Internal transaction: everything.
        assert s.execute(text("SELECT count(*) FROM persons")).scalar_one() == 3
        assert s.execute(text("SELECT count(*) FROM involvements")).scalar_one() == 3
    with Session(app_role_engine) as s, s.begin():
        mark_external(s)
        # A buggy query with no policy at all still cannot see victims or sealed arrests.
        roles = s.execute(text("SELECT role FROM involvements")).scalars().all()
        assert roles == ["arrestee"]
        names = s.execute(text("SELECT given_name FROM persons ORDER BY given_name")).scalars()
        assert list(names) == ["Arrestee"]
        assert s.execute(text("SELECT count(*) FROM arrests")).scalar_one() == 1
        # A set's copy of a person is held to the same floor.
        copies = s.execute(text("SELECT person_id FROM visible_persons")).scalars().all()
        assert copies == [arrestee_id]
