"""Lifecycle: proposal, governance decisions bound to a hash, and time-based status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from openpars.agreements import lifecycle, service
from openpars.agreements.floor import SiteFloor, set_floor
from openpars.agreements.models import (
    Agreement,
    AgreementStatus,
    AgreementVersion,
    EventKind,
    LifecycleAction,
)
from openpars.agreements.repository import list_events
from openpars.db import Database, utcnow
from openpars.errors import Conflict, InvalidInput
from tests.agreements.helpers import activate, audit_count, create, document, scope_dict
from tests.factories import World

A = LifecycleAction
S = AgreementStatus
US = timedelta(microseconds=1)


def decide(
    session: Session,
    agreement: Agreement,
    action: LifecycleAction,
    *,
    effective_at: datetime | None = None,
    new_expires_at: datetime | None = None,
) -> Agreement:
    """Apply a decision on the agreement's current version, as governance would."""
    current = service.current_version(session, agreement=agreement)
    return lifecycle.apply_decision(
        session,
        agreement_id=agreement.id,
        content_hash=current.content_hash,
        action=action,
        effective_at=effective_at or utcnow(),
        decided_by="board",
        new_expires_at=new_expires_at,
    )


def test_propose_checks_the_floor_and_names_the_clause(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world, scope=scope_dict(roles=["arrestee", "victim"]))
        with pytest.raises(InvalidInput) as caught:
            lifecycle.propose(
                session, actor=world.principals["agreements"], agreement_id=agreement.id
            )
        assert caught.value.field == "scope.roles"
        assert "victims may never be shared" in caught.value.message
        assert agreement.status is S.DRAFT


def test_propose_then_adopt(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        before = audit_count(session)
        lifecycle.propose(session, actor=world.principals["agreements"], agreement_id=agreement.id)
        assert agreement.status is S.PENDING_APPROVAL
        with pytest.raises(Conflict):
            lifecycle.propose(
                session, actor=world.principals["agreements"], agreement_id=agreement.id
            )
        decide(session, agreement, A.ADOPT)
        assert agreement.status is S.ACTIVE
        assert agreement.active_version == 1
        assert audit_count(session) == before + 2
        kinds = [e.kind for e in list_events(session, agreement.id)]
        assert kinds == [EventKind.CREATED, EventKind.PROPOSED, EventKind.ADOPTED]


def test_decision_on_another_version_is_refused(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        lifecycle.propose(session, actor=world.principals["agreements"], agreement_id=agreement.id)
        old_hash = service.current_version(session, agreement=agreement).content_hash
        service.update_agreement(
            session,
            actor=world.principals["agreements"],
            agreement_id=agreement.id,
            data=document(world, terms="changed while the vote was open"),
            reason="edit",
        )
        with pytest.raises(Conflict) as caught:
            lifecycle.apply_decision(
                session,
                agreement_id=agreement.id,
                content_hash=old_hash,
                action=A.ADOPT,
                effective_at=utcnow(),
                decided_by="board",
            )
        assert caught.value.field == "content_hash"
        assert agreement.status is S.PENDING_APPROVAL


def test_adopt_rechecks_a_raised_floor(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        lifecycle.propose(session, actor=world.principals["agreements"], agreement_id=agreement.id)
        raised = SiteFloor(
            forbidden_person_fields=frozenset({"place_of_birth", "citizenship", "family_name"})
        )
        set_floor(session, actor=world.principals["agreements"], floor=raised, reason="tighten")
        with pytest.raises(InvalidInput) as caught:
            decide(session, agreement, A.ADOPT)
        assert caught.value.field == "scope.person_fields.family_name"


def test_illegal_transitions(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        for action in (A.RENEW, A.AMEND, A.SUSPEND, A.RESUME):
            with pytest.raises(Conflict):
                decide(session, agreement, action)
        activate(session, agreement)
        with pytest.raises(Conflict):
            decide(session, agreement, A.ADOPT)
        with pytest.raises(Conflict):
            decide(session, agreement, A.AMEND)  # nothing pending
        decide(session, agreement, A.SUSPEND)
        assert agreement.status is S.SUSPENDED
        decide(session, agreement, A.RESUME)
        decide(session, agreement, A.TERMINATE)
        assert agreement.status is S.TERMINATED
        with pytest.raises(Conflict):
            decide(session, agreement, A.RESUME)


def test_amend_puts_the_new_version_in_force(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        service.update_agreement(
            session,
            actor=world.principals["agreements"],
            agreement_id=agreement.id,
            data=document(world, scope=scope_dict(grades=["F1"])),
            reason="felonies F1 only",
        )
        # Editing an active agreement changes nothing in force until the board decides.
        assert (agreement.current_version, agreement.active_version) == (2, 1)
        decide(session, agreement, A.AMEND)
        assert agreement.active_version == 2


def test_renew_writes_a_version_with_the_new_expiry(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        old = service.current_version(session, agreement=agreement)
        with pytest.raises(InvalidInput) as caught:
            decide(session, agreement, A.RENEW)
        assert caught.value.field == "new_expires_at"
        with pytest.raises(InvalidInput):
            decide(session, agreement, A.RENEW, new_expires_at=old.expires_at - US)
        new_expiry = old.expires_at + timedelta(days=365)
        with pytest.raises(InvalidInput):
            decide(session, agreement, A.RENEW, new_expires_at=new_expiry.replace(tzinfo=None))
        decide(session, agreement, A.RENEW, new_expires_at=new_expiry)
        renewed = service.current_version(session, agreement=agreement)
        assert renewed.version == 2
        assert renewed.expires_at == new_expiry
        assert renewed.content_hash != old.content_hash
        assert agreement.in_force_until == new_expiry
        assert agreement.active_version == 2


def test_expired_agreement_is_renewed_back_into_force(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = activate(session, create(session, world))
        end = agreement.in_force_until
        assert end is not None
        assert lifecycle.expire_due(session, at=end) == [agreement.id]
        assert agreement.status is S.EXPIRED
        decide(session, agreement, A.RENEW, new_expires_at=end + timedelta(days=365))
        assert agreement.status is S.ACTIVE


# ---- effective status at the boundaries -----------------------------------------------------

T0 = datetime(2031, 1, 1, tzinfo=UTC)
T1 = datetime(2032, 1, 1, tzinfo=UTC)


def _pair(status: AgreementStatus) -> tuple[Agreement, AgreementVersion]:
    agreement = Agreement(status=status, active_version=1, in_force_from=T0, in_force_until=T1)
    version = AgreementVersion(version=1, effective_at=T0, expires_at=T1)
    return agreement, version


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0 - US, S.SCHEDULED),
        (T0, S.ACTIVE),
        (T0 + US, S.ACTIVE),
        (T1 - US, S.ACTIVE),
        (T1, S.EXPIRED),
        (T1 + US, S.EXPIRED),
    ],
)
def test_effective_status_boundaries(at: datetime, expected: AgreementStatus) -> None:
    assert lifecycle.effective_status(*_pair(S.ACTIVE), at) is expected


def test_effective_status_of_other_states() -> None:
    assert lifecycle.effective_status(*_pair(S.SUSPENDED), T1 - US) is S.SUSPENDED
    assert lifecycle.effective_status(*_pair(S.SUSPENDED), T1) is S.EXPIRED
    for stored in (S.DRAFT, S.PENDING_APPROVAL, S.TERMINATED, S.EXPIRED):
        assert lifecycle.effective_status(*_pair(stored), T0 + US) is stored


def test_adoption_later_than_the_document_delays_the_window(db: Database, world: World) -> None:
    with db.session() as session:
        later = utcnow() + timedelta(days=3)
        agreement = activate(session, create(session, world), effective_at=later)
        assert agreement.in_force_from == later
        assert lifecycle.status_at(session, agreement=agreement, at=later - US) is S.SCHEDULED
        assert lifecycle.status_at(session, agreement=agreement, at=later) is S.ACTIVE
