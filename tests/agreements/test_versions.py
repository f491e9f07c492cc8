"""Agreements as versioned documents: creation, new versions, immutability, bad input."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from openpars.agreements import lifecycle, service
from openpars.agreements.models import AgreementStatus, AgreementVersion, ImmutableRowError
from openpars.db import Database, utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput
from tests.agreements.helpers import (
    FBI,
    ICE,
    activate,
    add_unit,
    audit_count,
    create,
    document,
    scope_dict,
)
from tests.factories import World


def test_create_makes_a_draft_with_version_one(db: Database, world: World) -> None:
    with db.session() as session:
        before = audit_count(session)
        agreement = create(session, world)
        version = service.current_version(session, agreement=agreement)
        assert agreement.status is AgreementStatus.DRAFT
        assert (agreement.current_version, agreement.active_version) == (1, None)
        assert version.created_by == "agreements"
        assert audit_count(session) == before + 1


def test_content_hash_is_sha256_of_canonical_json(db: Database, world: World) -> None:
    with db.session() as session:
        version = service.current_version(session, agreement=create(session, world))
        canonical = json.dumps(
            version.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        assert hashlib.sha256(canonical).hexdigest() == version.content_hash
        assert version.content["scope"]["roles"] == ["arrestee"]
        assert version.content["fee"] == {
            "amount": "5500.00",
            "currency": "USD",
            "period": "yearly",
        }
        assert version.content["effective_at"].endswith("+00:00")


def test_every_change_is_a_new_version_and_old_ones_stay(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        first = service.current_version(session, agreement=agreement)
        first_content, first_hash = dict(first.content), first.content_hash
        changed = document(world, terms="Arrestees only. Quarterly review.")
        service.update_agreement(
            session,
            actor=world.principals["agreements"],
            agreement_id=agreement.id,
            data=changed,
            reason="add quarterly review",
        )
        second = service.current_version(session, agreement=agreement)
        assert second.version == 2
        assert second.content_hash != first_hash
        assert second.reason == "add quarterly review"
        session.expire_all()
        versions = session.scalars(
            select(AgreementVersion)
            .where(AgreementVersion.agreement_id == agreement.id)
            .order_by(AgreementVersion.version)
        ).all()
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].content == first_content
        assert versions[0].content_hash == first_hash


def test_versions_cannot_be_changed_or_deleted(db: Database, world: World) -> None:
    with db.session() as session:
        version = service.current_version(session, agreement=create(session, world))
        version.reason = "rewritten history"
        with pytest.raises(ImmutableRowError):
            session.flush()
        session.rollback()
    with db.session() as session:
        version = service.current_version(session, agreement=create(session, world))
        session.delete(version)
        with pytest.raises(ImmutableRowError):
            session.flush()
        session.rollback()


def test_identical_content_is_not_a_new_version(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        same = service.document_of(service.current_version(session, agreement=agreement))
        with pytest.raises(Conflict):
            service.update_agreement(
                session,
                actor=world.principals["agreements"],
                agreement_id=agreement.id,
                data=same,
                reason="no change",
            )


def test_grantee_cannot_change(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        other = document(world, grantee_agency_id=world.agencies[FBI])
        with pytest.raises(InvalidInput) as caught:
            service.update_agreement(
                session,
                actor=world.principals["agreements"],
                agreement_id=agreement.id,
                data=other,
                reason="switch",
            )
        assert caught.value.field == "grantee_agency_id"


def test_updating_a_proposed_agreement_checks_the_floor(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        lifecycle.propose(session, actor=world.principals["agreements"], agreement_id=agreement.id)
        bad = document(world, scope=scope_dict(roles=["arrestee", "witness"]))
        with pytest.raises(InvalidInput) as caught:
            service.update_agreement(
                session,
                actor=world.principals["agreements"],
                agreement_id=agreement.id,
                data=bad,
                reason="widen",
            )
        assert caught.value.field == "scope.roles"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grantee_agency_id": "District Attorney's Office"}, "grantee_agency_id"),
        ({"grantee_agency_id": 99999}, "grantee_agency_id"),
        ({"parties": [ICE]}, "parties"),
    ],
)
def test_bad_references(db: Database, world: World, overrides: dict[str, str], field: str) -> None:
    resolved = {
        k: (world.agencies[v] if isinstance(v, str) else v)
        if k == "grantee_agency_id"
        else [world.agencies[x] for x in v]  # type: ignore[union-attr]
        for k, v in overrides.items()
    }
    with db.session() as session, pytest.raises(InvalidInput) as caught:
        create(session, world, **resolved)
    assert caught.value.field == field


def test_expiry_in_the_past_is_refused(db: Database, world: World) -> None:
    now = utcnow()
    with db.session() as session, pytest.raises(InvalidInput) as caught:
        create(
            session,
            world,
            effective_at=(now - timedelta(days=400)).isoformat(),
            expires_at=(now - timedelta(seconds=1)).isoformat(),
        )
    assert caught.value.field == "expires_at"
    assert "in the past" in caught.value.message


def test_sub_unit_grantee_and_foreign_units_are_refused(db: Database, world: World) -> None:
    with db.session() as session:
        ice_unit = add_unit(session, world, "ICE ERO Philadelphia")
        fbi_unit = add_unit(session, world, "FBI Philadelphia Field Office", parent=FBI)
        with pytest.raises(InvalidInput) as caught:
            create(session, world, grantee_agency_id=ice_unit.agency_id)
        assert caught.value.field == "grantee_agency_id"
        with pytest.raises(InvalidInput) as caught:
            create(session, world, all_units=False, grantee_unit_ids=[fbi_unit.agency_id])
        assert caught.value.field == "grantee_unit_ids"
        with pytest.raises(InvalidInput) as caught:
            create(session, world, all_units=False, grantee_user_ids=[fbi_unit.user_id])
        assert caught.value.field == "grantee_user_ids"
        create(session, world, all_units=False, grantee_unit_ids=[ice_unit.agency_id])


def test_overlapping_agreements_are_refused(db: Database, world: World) -> None:
    now = utcnow()
    with db.session() as session:
        first = create(session, world)
        with pytest.raises(InvalidInput) as caught:
            create(session, world, name="ICE second agreement")
        assert caught.value.field == "effective_at"
        assert f"overlaps agreement {first.id}" in caught.value.message
        # Back to back is fine: the first expires exactly when the second begins.
        expiry = service.current_version(session, agreement=first).expires_at
        create(
            session,
            world,
            name="ICE next year",
            effective_at=expiry.isoformat(),
            expires_at=(expiry + timedelta(days=365)).isoformat(),
        )
        # Another grantee is unaffected.
        create(session, world, name="FBI agreement", grantee_agency_id=world.agencies[FBI])
        # A terminated agreement no longer blocks its period.
        activate(session, first)
        current = service.current_version(session, agreement=first)
        lifecycle.apply_decision(
            session,
            agreement_id=first.id,
            content_hash=current.content_hash,
            action=lifecycle.LifecycleAction.TERMINATE,
            effective_at=now,
            decided_by="board",
        )
        create(
            session,
            world,
            name="ICE replacement",
            expires_at=(expiry - timedelta(days=1)).isoformat(),
        )


def test_only_managers_create_and_only_readers_read(db: Database, world: World) -> None:
    with db.session() as session:
        with pytest.raises(Forbidden):
            service.create_agreement(
                session, actor=world.principals["reader"], data=document(world)
            )
        agreement = create(session, world)
        with pytest.raises(Forbidden):
            service.show_agreement(
                session, actor=world.principals["ice"], agreement_id=agreement.id
            )


def test_the_database_refuses_to_rewrite_history(db: Database, world: World) -> None:
    with db.session() as session:
        agreement = create(session, world)
        agreement_id = agreement.id
    for statement in (
        "UPDATE agreement_versions SET reason = 'rewritten' WHERE agreement_id = :a",
        "DELETE FROM agreement_versions WHERE agreement_id = :a",
        "UPDATE agreement_events SET by = 'someone else' WHERE agreement_id = :a",
    ):
        with pytest.raises(DBAPIError) as caught, db.session() as session:
            session.execute(text(statement), {"a": agreement_id})
        assert "append-only" in str(caught.value)
