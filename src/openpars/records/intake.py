"""Arrest intake, one at a time: idempotent submission, the answer to a resend, the audit entry.

The rules before anything is written are in ``intake_plan`` (dates, OTN clash, person
resolution without silent merges), the writing in ``intake_write``; ``batch`` runs the same
steps for many arrests in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent
from openpars.audit.service import append
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden
from openpars.identity import repository as identity_repo
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Permission
from openpars.records import repository as repo
from openpars.records.enums import ChargeStage
from openpars.records.identifiers import lock_identifiers, visible_arrest_ids
from openpars.records.intake_plan import plan_arrest
from openpars.records.intake_write import write_arrests
from openpars.records.schemas import ArrestCreate, ArrestCreated
from openpars.records.versions import EARLIEST_ARREST, require_owner, write_event

# The canonical form digests are stored in: json.dumps(..., sort_keys=True, separators=(",",
# ":")) byte for byte. Built once, because json.dumps builds a new encoder on every call when
# given options, and without the cycle check, since a model dump is a tree.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False).encode


def intake_digest(data: ArrestCreate) -> str:
    """SHA-256 of the canonical payload: equal for a resend, different for a changed report."""
    return hashlib.sha256(_canonical(data.model_dump(mode="json")).encode()).hexdigest()


def intake_agency(actor: Principal) -> int:
    """The police agency an actor enters arrests for; Forbidden for anyone else."""
    require_owner(actor, Permission.ARREST_CREATE, AgencyKind.POLICE, "entering an arrest")
    if actor.agency_id is None:
        raise Forbidden("only an account of a police agency can enter arrests", code="no_agency")
    return actor.agency_id


def filing_oris(session: Session, agency_id: int) -> frozenset[str]:
    """The ORIs an agency files arrests under: its own and its sub-units' (``parent_id``)."""
    return identity_repo.unit_oris(session, agency_id)


def submit_arrest(
    session: Session,
    *,
    actor: Principal,
    data: ArrestCreate,
    now: datetime | None = None,
    earliest: date = EARLIEST_ARREST,
) -> ArrestCreated:
    """Enter an arrest with its persons, roles and recommended charges, idempotently.

    ``earliest`` is the site's earliest accepted arrest day (Settings.earliest_arrest_date).
    """
    agency_id = intake_agency(actor)
    digest = intake_digest(data)
    lock_identifiers(session)
    prior = repo.arrest_keys(session, agency_id, [data.report_id], [data.otn] if data.otn else [])
    # An arrest the actor may not see (sealed) is absent: never replayed under its report id,
    # never holding its OTN (records.identifiers).
    seen = visible_arrest_ids(session, actor, [a[0] for a in prior])
    prior = [a for a in prior if a[0] in seen]
    own = [a for a in prior if a[1] == agency_id and a[2] == data.report_id]
    if own:
        return _appended(session, replay(session, actor, own[0][0], data, digest))
    moment = now or utcnow()
    oris = filing_oris(session, agency_id)
    taken = bool(prior)  # not this report, so another arrest holds the OTN
    plan = plan_arrest(
        session, actor, data, digest, moment, otn_taken=taken, earliest=earliest, oris=oris
    )
    try:
        with repo.write_guard(session):
            result = write_arrests(session, actor, [plan], moment)[0]
    except IntegrityError as exc:
        # Two resends racing on PostgreSQL: the loser sees the winner's row and replays it.
        winner = repo.get_arrest_by_report(session, agency_id, data.report_id)
        if winner is None or not visible_arrest_ids(session, actor, [winner.id]):
            raise Conflict(
                "another request wrote a clashing record at the same moment; "
                "look the record up and resend",
                code="concurrent_write",
            ) from exc
        return _appended(session, replay(session, actor, winner.id, data, digest))
    append(session, created_event(actor, data, result))
    return result


def _appended(session: Session, answer: tuple[ArrestCreated, AuditEvent]) -> ArrestCreated:
    append(session, answer[1])
    return answer[0]


def created_event(actor: Principal, data: ArrestCreate, result: ArrestCreated) -> AuditEvent:
    """The audit entry of a new arrest."""
    return write_event(
        actor,
        "arrest.create",
        arrest_ids=[result.arrest_id],
        person_ids=result.person_ids,
        report_id=data.report_id,
        linked={str(link.index): link.matched_on for link in result.links},
    )


def replay(
    session: Session, actor: Principal, arrest_id: int, data: ArrestCreate, digest: str
) -> tuple[ArrestCreated, AuditEvent]:
    """Answer a resend with the arrest already stored; refuse a changed payload."""
    arrest = repo.get_arrest(session, arrest_id)
    assert arrest is not None
    if arrest.intake_digest != digest:
        raise Conflict(
            f"report id '{data.report_id}' was already used by your agency for an arrest with "
            "different content; send corrections as an amendment, or use a new report id",
            code="report_id_reused",
            field="report_id",
        )
    involvements = sorted(arrest.involvements, key=lambda i: i.id)
    charges = [c for c in arrest.charges if c.stage is ChargeStage.RECOMMENDED and c.revision == 1]
    event = write_event(
        actor,
        "arrest.create.replayed",
        arrest_ids=[arrest.id],
        person_ids=[i.person_id for i in involvements],
        report_id=data.report_id,
    )
    result = ArrestCreated(
        arrest_id=arrest.id,
        state=arrest.state,
        replayed=True,
        person_ids=[i.person_id for i in involvements],
        involvement_ids=[i.id for i in involvements],
        charge_ids=[c.id for c in sorted(charges, key=lambda c: c.sequence)],
    )
    return result, event
