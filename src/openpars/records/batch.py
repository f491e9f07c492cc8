"""Batch intake: many arrests in one transaction, through exactly the rules of one at a time.

Each arrest is checked and its persons resolved as ``submit_arrest`` does (idempotent resend,
OTN clash, dates, SID/FBI links, candidates by name), and a refused arrest is reported with its
index while the others are written. The SQL is shared across arrests: one lookup of every
report id, OTN, SID and FBI number up front, one INSERT per table for the accepted arrests
(persons, aliases, arrests, involvements, charges, versions) and one for all audit entries.

Rules never write, so a refused arrest has nothing to undo. The accepted arrests are written
in waves: when an arrest refers to something an earlier arrest of the same batch creates (the
same report id or OTN, a SID or FBI number of a new person, a name or birth date a new person
might match), the arrests before it are written first and it is resolved against the database
afresh, so it sees them exactly as it would after a one-at-a-time submission. Each wave runs in
a savepoint; if a concurrent writer clashes with it (PostgreSQL), the wave is redone one arrest
per savepoint, so only the clashing arrest turns into a replay or a refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.log import append_many
from openpars.db import utcnow
from openpars.errors import Conflict, DomainError, InvalidInput
from openpars.identity.principal import Principal
from openpars.records import repository as repo
from openpars.records.identifiers import lock_identifiers, visible_arrest_ids
from openpars.records.intake import (
    created_event,
    filing_oris,
    intake_agency,
    intake_digest,
    replay,
)
from openpars.records.intake_plan import Plan, plan_arrest, visible_known
from openpars.records.intake_write import write_arrests
from openpars.records.schemas import ArrestCreate, ArrestCreated, PersonIn
from openpars.records.validation import name_key
from openpars.records.versions import EARLIEST_ARREST

MAX_BATCH = 500
log = logging.getLogger("openpars.records")


class BatchRefusal(BaseModel):
    """One arrest of a batch that was refused; nothing of it was written."""

    index: int = Field(description="position of the arrest in the batch, from 0")
    refused: Literal[True] = True
    status: int = Field(description="the HTTP status a single submission would have had")
    code: str
    field: str | None = None
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


BatchItemResult = ArrestCreated | BatchRefusal


def submit_arrests(
    session: Session,
    *,
    actor: Principal,
    items: list[ArrestCreate],
    now: datetime | None = None,
    params: dict[str, Any] | None = None,
    item_params: Sequence[dict[str, Any]] | None = None,
    earliest: date = EARLIEST_ARREST,
) -> list[BatchItemResult]:
    """Enter many arrests in the caller's transaction; one result per item, in order.

    Every written or replayed arrest gets its one audit entry and every refused one a REFUSED
    entry; ``params`` (e.g. the file imported) are added to each entry's parameters, and
    ``item_params[i]`` (e.g. its line number) to the entry of item i.
    """
    _Batch.check_size(items)
    run = _Batch(session, actor, intake_agency(actor), now or utcnow(), params or {}, earliest)
    run.prefetch(items)
    for index, data in enumerate(items):
        run.submit(index, data)
    run.write_pending()
    for index, extra in enumerate(item_params or []):
        run.events[index].params.update(extra)
    append_many(session, [run.events[i] for i in sorted(run.events)])
    return [run.results[i] for i in range(len(items))]


class _Batch:
    """The state of one batch: what was looked up, planned, written and answered so far."""

    @staticmethod
    def check_size(items: Sequence[ArrestCreate]) -> None:
        if len(items) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH} arrests; this one has {len(items)}; split it",
                field="items",
            )

    def __init__(
        self,
        session: Session,
        actor: Principal,
        agency_id: int,
        moment: datetime,
        params: dict[str, Any],
        earliest: date,
    ) -> None:
        self.session, self.actor, self.agency_id = session, actor, agency_id
        self.moment, self.params = moment, params
        self.earliest = earliest
        self.oris = filing_oris(session, agency_id)
        self.results: dict[int, BatchItemResult] = {}
        self.events: dict[int, AuditEvent] = {}
        self.pending: list[tuple[int, Plan]] = []
        # What arrests of this batch create (pending or written): a later arrest touching any
        # of it is resolved against the database after the earlier ones are written.
        self.reports: set[str] = set()
        self.otns: set[str] = set()
        self.identifiers: set[tuple[str, str]] = set()
        self.names: set[str] = set()
        self.birth_dates: set[date] = set()
        self.unindexed: list[PersonIn] = []
        self.prior: list[tuple[int, int, str | None, str | None]] = []
        self.known: list[repo.KnownPerson] = []
        self.seen_arrests: set[int] = set()

    def prefetch(self, items: Sequence[ArrestCreate]) -> None:
        """One query for every report id and OTN, one for every SID and FBI number, and one
        each for which of the records found the actor may see."""
        lock_identifiers(self.session)
        self.prior = repo.arrest_keys(
            self.session,
            self.agency_id,
            [d.report_id for d in items],
            [d.otn for d in items if d.otn],
        )
        described = [p for d in items for p in _described(d)]
        self.known = visible_known(
            self.session,
            self.actor,
            repo.identified_persons(
                self.session,
                sids=[p.sid for p in described if p.sid],
                fbi_numbers=[p.fbi_number for p in described if p.fbi_number],
            ),
        )
        self.seen_arrests = visible_arrest_ids(self.session, self.actor, (a[0] for a in self.prior))

    def submit(self, index: int, data: ArrestCreate) -> None:
        """Answer one arrest: replay, refusal, or a plan waiting to be written."""
        digest = intake_digest(data)
        fresh = self._touches_batch(data)
        if fresh:
            self.write_pending()
        try:
            if fresh:
                otns = [data.otn] if data.otn else []
                prior = repo.arrest_keys(self.session, self.agency_id, [data.report_id], otns)
                seen = visible_arrest_ids(self.session, self.actor, [a[0] for a in prior])
            else:
                prior = [a for a in self.prior if self._concerns(a, data)]
                seen = self.seen_arrests
            # An arrest the actor may not see (sealed) is absent: never replayed under its
            # report id, never holding its OTN (records.identifiers).
            prior = [a for a in prior if a[0] in seen]
            own = [a for a in prior if a[1] == self.agency_id and a[2] == data.report_id]
            if own:
                self.results[index], event = replay(
                    self.session, self.actor, own[0][0], data, digest
                )
                self.events[index] = self._with_params(event)
                return
            taken = bool(prior)  # not this report, so another arrest holds the OTN
            plan = plan_arrest(
                self.session,
                self.actor,
                data,
                digest,
                self.moment,
                otn_taken=taken,
                known=None if fresh else self.known,
                earliest=self.earliest,
                oris=self.oris,
            )
        except DomainError as exc:
            self._refuse(index, exc)
            return
        except SQLAlchemyError:
            raise  # the transaction itself failed: nothing more can be answered in it
        except Exception:  # one arrest's failure must not hold back the others
            # The rules only read, so nothing of this arrest is left to undo: it is refused
            # (and logged as the bug it is) while the others of the batch go on.
            log.exception("batch intake: arrest %d of the batch failed unexpectedly", index)
            self._refuse(index, _unexpected())
            return
        self.pending.append((index, plan))
        self._remember(plan)

    def write_pending(self) -> None:
        """Write every planned arrest with one statement per table, in one savepoint."""
        if not self.pending:
            return
        waiting, self.pending = self.pending, []
        try:
            # A savepoint per wave (not per arrest): a failed wave must leave none of its rows.
            with self.session.begin_nested():
                results = write_arrests(
                    self.session, self.actor, [p for _, p in waiting], self.moment
                )
        except IntegrityError:
            # A concurrent writer got there first: redo one arrest per savepoint, so only the
            # clashing one becomes a replay or a refusal, as a single submission would.
            for index, plan in waiting:
                self._write_one(index, plan)
            return
        for (index, plan), result in zip(waiting, results, strict=True):
            self._answer(index, plan, result)

    def _write_one(self, index: int, plan: Plan) -> None:
        try:
            with self.session.begin_nested():
                result = write_arrests(self.session, self.actor, [plan], self.moment)[0]
        except IntegrityError:
            winner = repo.get_arrest_by_report(self.session, self.agency_id, plan.data.report_id)
            if winner is None or not visible_arrest_ids(self.session, self.actor, [winner.id]):
                self._refuse(index, _concurrent_write())
                return
            try:
                self.results[index], event = replay(
                    self.session, self.actor, winner.id, plan.data, plan.digest
                )
            except DomainError as exc:
                self._refuse(index, exc)
                return
            self.events[index] = self._with_params(event)
            return
        self._answer(index, plan, result)

    def _concerns(
        self, arrest: tuple[int, int, str | None, str | None], data: ArrestCreate
    ) -> bool:
        """Whether a prefetched arrest is what a lone submission of ``data`` would look up."""
        agency, report, otn = arrest[1:]
        own = agency == self.agency_id and report == data.report_id
        return own or (data.otn is not None and otn == data.otn)

    def _answer(self, index: int, plan: Plan, result: ArrestCreated) -> None:
        self.results[index] = result
        self.events[index] = self._with_params(created_event(self.actor, plan.data, result))

    def _refuse(self, index: int, exc: DomainError) -> None:
        self.results[index] = BatchRefusal(
            index=index,
            status=exc.status,
            code=exc.code,
            field=exc.field,
            message=exc.message,
            details=exc.details,
        )
        self.events[index] = AuditEvent(
            kind=AuditKind.REFUSED,
            action="arrest.create",
            outcome=Outcome.REFUSED,
            user_id=self.actor.user_id,
            username=self.actor.username,
            agency_id=self.actor.agency_id,
            source_ip=self.actor.source_ip,
            params={**self.params, "batch_index": index, "status": exc.status},
            error_code=exc.code,
        )

    def _with_params(self, event: AuditEvent) -> AuditEvent:
        event.params = {**self.params, **event.params}
        return event

    def _touches_batch(self, data: ArrestCreate) -> bool:
        """Whether this arrest may refer to something an earlier arrest of the batch creates."""
        if data.report_id in self.reports or (data.otn is not None and data.otn in self.otns):
            return True
        for involvement in data.involvements:
            person = involvement.person
            if person is None:
                continue
            if _identifiers(person) & self.identifiers:
                return True
            if not involvement.create_new_person and self._resembles_new(person):
                return True
        return False

    def _resembles_new(self, person: PersonIn) -> bool:
        """Whether a person being matched shares a name or birth date with a new one."""
        # Name keys cost more than the rest of the bookkeeping, and only a person being
        # matched needs them, so new persons are indexed on the first such person.
        for new in self.unindexed:
            self.names |= _names(new)
            if new.birth_date is not None:
                self.birth_dates.add(new.birth_date)
        self.unindexed.clear()
        if person.birth_date is not None and person.birth_date in self.birth_dates:
            return True
        return bool(_names(person) & self.names)

    def _remember(self, plan: Plan) -> None:
        self.reports.add(plan.data.report_id)
        if plan.data.otn is not None:
            self.otns.add(plan.data.otn)
        for item in plan.resolved:
            if item.person_id is None and item.new is not None:
                self.identifiers |= _identifiers(item.new)
                self.unindexed.append(item.new)


def _described(data: ArrestCreate) -> list[PersonIn]:
    return [i.person for i in data.involvements if i.person is not None]


def _identifiers(person: PersonIn) -> set[tuple[str, str]]:
    pairs = (("sid", person.sid), ("fbi", person.fbi_number))
    return {(kind, value) for kind, value in pairs if value}


def _names(person: PersonIn) -> set[str]:
    """The name keys matching compares (family and given name, and each alias)."""
    keys = {name_key(person.family_name, person.given_name)}
    return keys | {name_key(a.family_name, a.given_name) for a in person.aliases}


class _Unexpected(DomainError):
    status = 500
    code = "internal_error"


def _unexpected() -> DomainError:
    return _Unexpected(
        "this arrest could not be checked because of an internal error (logged for the "
        "operator); nothing of it was written, the other arrests were not held back"
    )


def _concurrent_write() -> Conflict:
    return Conflict(
        "another request wrote a clashing record at the same moment; look the record up and resend",
        code="concurrent_write",
    )
