"""grant_for: the one question the enforcement point asks, at microsecond boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from openpars.agreements import killswitch, lifecycle, service
from openpars.agreements.grants import grant_for
from openpars.agreements.models import Agreement, LifecycleAction, SuspensionTarget
from openpars.db import Database, utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.identity.principal import Principal
from tests.agreements.helpers import FBI, activate, add_unit, create, document
from tests.factories import World, city_voter

US = timedelta(microseconds=1)


def window(agreement: Agreement) -> tuple[datetime, datetime]:
    assert agreement.in_force_from is not None
    assert agreement.in_force_until is not None
    return agreement.in_force_from, agreement.in_force_until


def test_whole_agency_agreement(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        start, end = window(agreement)
        ice = world.principals["ice"]
        grant = grant_for(session, principal=ice, at=start)
        assert grant is not None
        assert (grant.agreement_id, grant.version) == (agreement.id, 1)
        assert (
            grant.content_hash == service.current_version(session, agreement=agreement).content_hash
        )
        assert grant.scope.roles == frozenset({"arrestee"})
        assert (grant.effective_at, grant.expires_at) == (start, end)
        assert grant_for(session, principal=ice, at=start - US) is None
        assert grant_for(session, principal=ice, at=end - US) is not None
        assert grant_for(session, principal=ice, at=end) is None
        assert grant_for(session, principal=ice, at=end + US) is None
        # Other agencies, internal users: no grant.
        assert grant_for(session, principal=world.principals["fbi"], at=start) is None
        assert grant_for(session, principal=world.principals["reader"], at=start) is None


def test_no_grant_before_adoption_or_after_termination(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        now = utcnow()
        assert grant_for(session, principal=world.principals["ice"], at=now) is None
        lifecycle.propose(session, actor=world.principals["agreements"], agreement_id=agreement.id)
        assert grant_for(session, principal=world.principals["ice"], at=now) is None
        activate_pending(session, agreement)
        assert grant_for(session, principal=world.principals["ice"], at=now) is not None
        current = service.current_version(session, agreement=agreement)
        lifecycle.apply_decision(
            session,
            agreement_id=agreement.id,
            content_hash=current.content_hash,
            action=LifecycleAction.TERMINATE,
            effective_at=now,
            decided_by="board",
        )
        assert grant_for(session, principal=world.principals["ice"], at=now) is None


def activate_pending(session: Session, agreement: Agreement) -> None:
    current = service.current_version(session, agreement=agreement)
    lifecycle.apply_decision(
        session,
        agreement_id=agreement.id,
        content_hash=current.content_hash,
        action=LifecycleAction.ADOPT,
        effective_at=utcnow() - timedelta(days=1),
        decided_by="board",
    )


def test_named_unit_admits_only_that_unit(db: Database, world: World) -> None:
    with db.session() as session:
        signed = add_unit(session, world, "ICE HSI Philadelphia")
        other = add_unit(session, world, "ICE ERO Philadelphia")
        agreement = activate(
            session, create(session, world, all_units=False, grantee_unit_ids=[signed.agency_id])
        )
        at = window(agreement)[0]
        assert grant_for(session, principal=signed.principal, at=at) is not None
        # The unit that did not sign sees nothing, nor does the agency's top level.
        assert grant_for(session, principal=other.principal, at=at) is None
        assert grant_for(session, principal=world.principals["ice"], at=at) is None


def test_named_account_admits_only_that_account(db: Database, world: World) -> None:
    with db.session() as session:
        unit = add_unit(session, world, "ICE HSI Philadelphia")
        agreement = activate(
            session, create(session, world, all_units=False, grantee_user_ids=[unit.user_id])
        )
        at = window(agreement)[0]
        assert grant_for(session, principal=unit.principal, at=at) is not None
        assert grant_for(session, principal=world.principals["ice"], at=at) is None


def test_all_units_admits_sub_units(db: Database, world: World) -> None:
    with db.session() as session:
        unit = add_unit(session, world, "ICE HSI Philadelphia")
        agreement = activate(session, create(session, world))
        assert grant_for(session, principal=unit.principal, at=window(agreement)[0]) is not None


def test_a_pending_amendment_is_not_in_force(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        service.update_agreement(
            session,
            actor=world.principals["agreements"],
            agreement_id=agreement.id,
            data=document(world, terms="amended"),
            reason="amend",
        )
        grant = grant_for(session, principal=world.principals["ice"], at=utcnow())
        assert grant is not None
        assert grant.version == 1


def test_governance_suspension_stops_the_grant(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        current = service.current_version(session, agreement=agreement)
        lifecycle.apply_decision(
            session,
            agreement_id=agreement.id,
            content_hash=current.content_hash,
            action=LifecycleAction.SUSPEND,
            effective_at=utcnow(),
            decided_by="board",
        )
        assert grant_for(session, principal=world.principals["ice"], at=utcnow()) is None


# ---- kill switch ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", list(SuspensionTarget))
def test_kill_switch_cuts_off_from_that_instant_and_resumes(
    db: Database, world: World, target: SuspensionTarget
) -> None:
    with db.session() as session:
        unit = add_unit(session, world, "ICE HSI Philadelphia")
        bystander = add_unit(session, world, "ICE ERO Philadelphia")
        agreement = activate(session, create(session, world))
        target_id = {
            SuspensionTarget.AGREEMENT: None,
            SuspensionTarget.UNIT: unit.agency_id,
            SuspensionTarget.ACCOUNT: unit.user_id,
        }[target]
        cut = utcnow()
        voter = world.principals[city_voter(session, world)]
        row = killswitch.suspend(
            session,
            actor=voter,
            agreement_id=agreement.id,
            target=target,
            target_id=target_id,
            reason="misuse under review",
            at=cut,
        )
        assert grant_for(session, principal=unit.principal, at=cut - US) is not None
        assert grant_for(session, principal=unit.principal, at=cut) is None
        others = grant_for(session, principal=bystander.principal, at=cut)
        assert (others is None) == (target is SuspensionTarget.AGREEMENT)
        with pytest.raises(Conflict):
            killswitch.suspend(
                session,
                actor=voter,
                agreement_id=agreement.id,
                target=target,
                target_id=target_id,
                reason="again",
            )
        back = cut + timedelta(seconds=5)
        killswitch.resume(session, actor=voter, suspension_id=row.id, reason="cleared", at=back)
        assert grant_for(session, principal=unit.principal, at=back - US) is None
        assert grant_for(session, principal=unit.principal, at=back) is not None
        with pytest.raises(Conflict):
            killswitch.resume(session, actor=voter, suspension_id=row.id, reason="twice")


def test_kill_switch_targets_must_belong_to_the_grantee(db: Database, world: World) -> None:
    with db.session() as session:
        fbi_unit = add_unit(session, world, "FBI Philadelphia", parent=FBI)
        agreement = activate(session, create(session, world))
        admin = world.principals["agreements"]
        for target, target_id in (
            (SuspensionTarget.UNIT, fbi_unit.agency_id),
            (SuspensionTarget.ACCOUNT, fbi_unit.user_id),
            (SuspensionTarget.UNIT, None),
        ):
            with pytest.raises(InvalidInput) as caught:
                killswitch.suspend(
                    session,
                    actor=admin,
                    agreement_id=agreement.id,
                    target=target,
                    target_id=target_id,
                    reason="x" * 5,
                )
            assert caught.value.field == "target_id"


def test_kill_switch_needs_the_permission(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        reader: Principal = world.principals["reader"]
        with pytest.raises(Forbidden):
            killswitch.suspend(
                session,
                actor=reader,
                agreement_id=agreement.id,
                target=SuspensionTarget.AGREEMENT,
                reason="not mine to pull",
            )


def test_kill_switch_shows_in_status_and_timeline(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        killswitch.suspend(
            session,
            actor=world.principals["agreements"],
            agreement_id=agreement.id,
            target=SuspensionTarget.AGREEMENT,
            reason="pull the plug",
        )
        read = service.show_agreement(
            session, actor=world.principals["agreements"], agreement_id=agreement.id
        )
        assert (read.status.value, read.effective_status.value) == ("active", "suspended")
        events = service.timeline(
            session, actor=world.principals["agreements"], agreement_id=agreement.id
        )
        assert events[-1].kind.value == "kill_switch"
        assert events[-1].reason == "pull the plug"
