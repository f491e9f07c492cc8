"""The workflow services refuse a step taken on a stale form (expected_version), with the
arrest locked; without an expected version (the API) they behave as before."""

from __future__ import annotations

import pytest

from openpars.db import Database
from openpars.errors import Conflict
from openpars.records import service
from openpars.records.schemas import (
    ArraignmentCreate,
    ArrestCreate,
    BailRecommendationCreate,
    ChargingDecisionCreate,
    CustodyCreate,
)
from tests.factories import World
from tests.records.factories import arrest_payload
from tests.records.helpers import arraignment, bail, custody, row_counts


def charged(db: Database, world: World) -> tuple[int, int]:
    """A charged arrest's id and version."""
    with db.session() as session:
        created = service.submit_arrest(
            session,
            actor=world.principals["intake"],
            data=ArrestCreate.model_validate(arrest_payload()),
        )
        arrest = service.decide_charges(
            session,
            actor=world.principals["charging"],
            arrest_id=created.arrest_id,
            data=ChargingDecisionCreate.model_validate({"outcome": "approved"}),
        )
        return arrest.id, arrest.version


def test_each_step_refuses_a_version_other_than_the_current_one(db: Database, world: World) -> None:
    arrest_id, version = charged(db, world)
    before = row_counts(db)
    with pytest.raises(Conflict) as stale, db.session() as session:
        service.recommend_bail(
            session,
            actor=world.principals["pretrial"],
            arrest_id=arrest_id,
            data=BailRecommendationCreate.model_validate(bail()),
            expected_version=version - 1,
        )
    assert stale.value.field == "version"
    assert f"it was version {version - 1}, it is now version {version}" in stale.value.message
    assert row_counts(db) == before
    with pytest.raises(Conflict), db.session() as session:  # a version from the future too
        service.arraign(
            session,
            actor=world.principals["court"],
            arrest_id=arrest_id,
            data=ArraignmentCreate.model_validate(arraignment()),
            expected_version=version + 1,
        )
    assert row_counts(db) == before
    with db.session() as session:
        arrest = service.arraign(
            session,
            actor=world.principals["court"],
            arrest_id=arrest_id,
            data=ArraignmentCreate.model_validate(arraignment()),
            expected_version=version,
        )
        arraigned = arrest.version
    with pytest.raises(Conflict), db.session() as session:
        service.record_custody(
            session,
            actor=world.principals["court"],
            arrest_id=arrest_id,
            data=CustodyCreate.model_validate(custody()),
            expected_version=version,
        )
    with db.session() as session:  # no expected version: the API's call, unchanged
        service.record_custody(
            session,
            actor=world.principals["court"],
            arrest_id=arrest_id,
            data=CustodyCreate.model_validate(custody()),
        )
    assert arraigned == version + 1
