"""A kill switch and reads in flight: every read finishes wholly before or wholly after it."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session

from openpars.access import service
from openpars.access.enforcement import policy_for
from openpars.access.schemas import PersonQuery, ReadContext
from openpars.agreements import killswitch
from openpars.agreements.models import SuspensionTarget
from openpars.db import Database, utcnow
from openpars.errors import Forbidden
from openpars.identity.principal import SYSTEM
from openpars.records.enums import InvolvementRole
from tests.access import data
from tests.access.agreements import activate
from tests.factories import World, build_world

CONTEXT = ReadContext(purpose="warrant-service")


def _arrestee_under_agreement(db: Database) -> tuple[World, int]:
    """The standard world, its agreement in force and one arrestee it shows (SID-5001)."""
    with db.session() as s:
        world = build_world(s)
        agreement = activate(s, world)
        p = data.person(s, "Quinn", "Ada", sid="SID-5001")
        data.arrest(
            s,
            agency_id=world.agencies["Philadelphia Police Department"],
            people=[(p, InvolvementRole.ARRESTEE)],
        )
        return world, agreement.id


def _suspend(s: Session, agreement_id: int) -> None:
    """Suspend the whole agreement, as a stakeholder's kill switch does, in ``s``."""
    killswitch.suspend(
        s,
        actor=SYSTEM,
        agreement_id=agreement_id,
        target=SuspensionTarget.AGREEMENT,
        reason="misuse reported",
    )


def test_suspension_waits_for_reads_in_flight_and_binds_every_later_read(
    fresh_db: Database,
) -> None:
    world, agreement_id = _arrestee_under_agreement(fresh_db)
    ice = world.principals["ice"]
    query = PersonQuery(sid="SID-5001")
    suspended = threading.Event()

    def suspend() -> None:
        with fresh_db.session() as s:
            _suspend(s, agreement_id)
        suspended.set()

    with fresh_db.session(external=True) as s:
        # A read in flight: its grant decided and its page read, its unit not committed yet
        # (the whole search commits with its audit entry on PostgreSQL, so it is taken in steps).
        policy = policy_for(s, principal=ice, context=CONTEXT, at=utcnow())
        in_flight = service.person_page(s, policy=policy, query=query)
        worker = threading.Thread(target=suspend)
        worker.start()
        time.sleep(0.5)
        # The kill switch cannot land in the middle of a read that already holds its grant.
        assert not suspended.is_set()
        assert in_flight.total == 1
    worker.join(timeout=30)
    assert suspended.is_set()
    with (
        fresh_db.session(external=True) as s,
        pytest.raises(Forbidden, match="no data-sharing agreement"),
    ):
        service.search_persons(s, principal=ice, query=query, context=CONTEXT)


def test_a_read_arriving_while_a_suspension_is_under_way_waits_and_is_refused(
    fresh_db: Database,
) -> None:
    # The read's share lock on the agreements travels with its rate-window claim once this
    # process knows the agreement's limits; the in-force lookup after it must still run only
    # once the lock is held, and so see the suspension it waited for.
    world, agreement_id = _arrestee_under_agreement(fresh_db)
    ice = world.principals["ice"]
    query = PersonQuery(sid="SID-5001")
    with fresh_db.session(external=True) as s:  # the limits are now known
        assert service.search_persons(s, principal=ice, query=query, context=CONTEXT).total == 1
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            with fresh_db.session(external=True) as s:
                outcome["page"] = service.search_persons(
                    s, principal=ice, query=query, context=CONTEXT
                )
        except Forbidden as exc:
            outcome["refused"] = exc

    reader = threading.Thread(target=read)
    with fresh_db.session() as s:
        _suspend(s, agreement_id)
        s.flush()
        reader.start()
        time.sleep(0.5)
        # The suspension is not committed yet: the read waits for it.
        assert reader.is_alive()
        assert not outcome
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert "page" not in outcome
    assert isinstance(outcome.get("refused"), Forbidden)
