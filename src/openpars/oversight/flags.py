"""Flags and the detector interface: each detector is a function over the store returning flags.

A detector reads the audit log and the records with set-based SQL and returns ``FlagDraft``s:
its name, the rule in words, the threshold, the subject (user, agency, agreement), the audit
entries that fired it, the instant it fired, and a ``dedupe_key`` naming the finding.
``run_detectors`` stores the drafts; a finding already stored (same detector and key) is not
stored again, so running the detectors twice, or after the canary trigger raised the same flag
at the moment of access, changes nothing. Later detectors (volume bursts, enumeration, ...)
plug in by being added to ``DETECTORS`` or passed to ``run_detectors``; the detectors of issue
13 are in ``oversight.detectors``. ``FlagDraft``, ``Detector`` and the period and thresholds
they take live in ``oversight.detection`` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from openpars.audit import repository as audit_repo
from openpars.audit.events import Outcome
from openpars.audit.models import AuditEntry
from openpars.oversight import detectors
from openpars.oversight.detection import DetectionPeriod, Detector, FlagDraft, Thresholds
from openpars.oversight.facts import refresh, whole_store_memory, without_jit
from openpars.oversight.models import (
    CANARY_DETECTOR,
    CANARY_RULE,
    CANARY_THRESHOLD,
    Canary,
    Flag,
    FlagEntry,
)


def canary_detector(
    session: Session, period: DetectionPeriod | None = None, limits: Thresholds | None = None
) -> list[FlagDraft]:
    """Every external read that returned a canary person or arrest, one flag per entry.

    The trigger raises these at the moment of access; this set-based pass finds the same
    ones (and any written while the trigger was absent), so it is the reference for both.
    """
    # The canaries first (a few rows), then the entries naming them: lookups of the subject
    # index by those ids, and of the subjects of the entries not integrated yet (both in
    # audit.repository.entries_naming), not a scan of every subject of the log.
    persons = [i for i in session.scalars(select(Canary.person_id)) if i is not None]
    arrests = [i for i in session.scalars(select(Canary.arrest_id)) if i is not None]
    hits = audit_repo.entries_naming(session, person_ids=persons, arrest_ids=arrests).subquery()
    rows = session.execute(
        select(
            AuditEntry.id,
            AuditEntry.user_id,
            AuditEntry.agency_id,
            AuditEntry.agreement_id,
            AuditEntry.at,
        )
        .join(hits, hits.c.entry_id == AuditEntry.id)
        .where(
            AuditEntry.agreement_id.is_not(None),
            AuditEntry.outcome == Outcome.OK,
            *(
                ()
                if period is None
                else (AuditEntry.at >= period.start, AuditEntry.at < period.end)
            ),
        )
        .order_by(AuditEntry.id)
    ).all()
    return [
        FlagDraft(
            detector=CANARY_DETECTOR,
            dedupe_key=f"entry:{entry_id}",
            rule=CANARY_RULE,
            threshold=CANARY_THRESHOLD,
            subject_user_id=user_id,
            subject_agency_id=agency_id,
            subject_agreement_id=agreement_id,
            entry_ids=(entry_id,),
            raised_at=at,
        )
        for entry_id, user_id, agency_id, agreement_id, at in rows
    ]


DETECTORS: tuple[Detector, ...] = (canary_detector, *detectors.ALL)


# Keys looked up per statement: far below every engine's limit on bound parameters.
_KEYS_PER_LOOKUP = 500


def _stored_keys(session: Session, drafts: Sequence[FlagDraft]) -> set[tuple[str, str]]:
    """Which of the drafts' (detector, key) pairs are stored already."""
    wanted = sorted({(d.detector, d.dedupe_key) for d in drafts})
    known: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), _KEYS_PER_LOOKUP):
        chunk = wanted[start : start + _KEYS_PER_LOOKUP]
        stmt = select(Flag.detector, Flag.dedupe_key).where(
            Flag.detector.in_(sorted({d for d, _k in chunk})),
            Flag.dedupe_key.in_([k for _d, k in chunk]),
        )
        known |= {(d, k) for d, k in session.execute(stmt)}
    return known


def record_flags(session: Session, drafts: Sequence[FlagDraft]) -> list[int]:
    """Store the drafts not stored yet (by detector and key); the ids of the new flags, in the
    drafts' order. Two multi-row inserts (the flags, returning their ids in the order given,
    then their entries), not one flush per flag: a whole-store run raises thousands."""
    if not drafts:
        return []
    known = _stored_keys(session, drafts)
    new: list[FlagDraft] = []
    for draft in drafts:
        if (draft.detector, draft.dedupe_key) in known:
            continue
        known.add((draft.detector, draft.dedupe_key))
        new.append(draft)
    if not new:
        return []
    session.flush()
    rows = [
        {
            "detector": d.detector,
            "dedupe_key": d.dedupe_key,
            "rule": d.rule,
            "threshold": d.threshold,
            "subject_user_id": d.subject_user_id,
            "subject_agency_id": d.subject_agency_id,
            "subject_agreement_id": d.subject_agreement_id,
            "raised_at": d.raised_at,
        }
        for d in new
    ]
    created = list(
        session.scalars(
            insert(Flag).returning(Flag.id, sort_by_parameter_order=True),
            rows,
        )
    )
    links = [
        (flag_id, e)
        for flag_id, draft in zip(created, new, strict=True)
        for e in sorted(set(draft.entry_ids))
    ]
    if not links:
        return created
    if session.get_bind().dialect.name == "postgresql":
        # One statement for every link (a day's flags link some 20,000 entries at 10M): the
        # two arrays unnested, not a statement per row (psycopg's executemany). Each array is
        # sent as its text ('{1,2,...}', integers only), cast by the server: psycopg's dump of
        # a list of ints tests every element's text against a pattern (at 10M 70 ms for
        # population_skew's 34,000 links, against 13 ms joined here).
        session.execute(
            text(
                "INSERT INTO oversight_flag_entries (flag_id, entry_id) SELECT * FROM "
                "unnest(CAST(CAST(:flags AS TEXT) AS INTEGER[]), "
                "CAST(CAST(:entries AS TEXT) AS BIGINT[]))"
            ),
            {
                "flags": "{" + ",".join(str(int(f)) for f, _e in links) + "}",
                "entries": "{" + ",".join(str(int(e)) for _f, e in links) + "}",
            },
        )
    else:
        session.execute(insert(FlagEntry), [{"flag_id": f, "entry_id": e} for f, e in links])
    return created


def run_detectors(
    session: Session,
    detectors: Sequence[Detector] = DETECTORS,
    period: DetectionPeriod | None = None,
    limits: Thresholds | None = None,
    *,
    refreshed: bool = False,
    reader: Session | None = None,
) -> list[int]:
    """Bring the access facts up to the integrated log, run the detectors over the period (the
    whole store without one) and store what they find; the ids of new flags.

    ``refreshed``: the caller refreshed the facts (``facts.refresh``) in this transaction,
    after its last write to the log or the records, so the refresh is not run again (a daily
    run that times its detectors one call each refreshes once up front: a refresh with nothing
    to read is still some 26 statements on PostgreSQL, the timeline's and arrestee rows'
    watermarks claimed and their tables probed).

    ``reader``: the detectors read through this session instead (DuckDB attached to the store,
    ``oversight.duck``), and what they find is stored through ``session``, in its transaction.
    The reader sees what the store had committed, so the facts are not refreshed here: the
    caller refreshes them and commits first (``refreshed`` is implied)."""
    if reader is None and not refreshed:
        refresh(session)
    source = session if reader is None else reader
    created: list[int] = []
    # A period's detectors (a daily run) read a day's rows by index: no JIT (facts.without_jit);
    # the whole store's group millions of rows: more memory (facts.whole_store_memory). Both
    # are the store's settings, of no use to a reader of its own.
    settings: AbstractContextManager[None] = (
        nullcontext()
        if reader is not None
        else without_jit(session)
        if period is not None
        else whole_store_memory(session)
    )
    with settings:
        for detector in detectors:
            # A detector written for the whole store alone (``Callable[[Session], ...]``) still
            # runs.
            if period is None and limits is None:
                drafts = detector(source)
            else:
                drafts = detector(source, period, limits)
            created += record_flags(session, drafts)
    return created
