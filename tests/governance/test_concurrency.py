"""Votes racing to decide one proposal: the decision is applied exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from openpars.agreements.models import AgreementEvent, AgreementStatus, EventKind
from openpars.db import Database, utcnow
from openpars.errors import Conflict
from openpars.governance import board
from openpars.governance.models import BoardConfig, Proposal, ProposalStatus, Vote
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from tests.factories import build_world
from tests.governance.helpers import agreement, build_gov


def test_two_deciding_votes_at_once_apply_the_decision_once(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    pid = gov.propose(now=utcnow())
    with gov.session() as session:
        da = gov.ballot(pid, "da", Choice.YES, utcnow())
        submit_vote(session, actor=gov.voters["da"], data=da)
    ballots = {who: gov.ballot(pid, who, Choice.YES, utcnow()) for who in ("court", "city")}
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def cast(who: str) -> None:
        barrier.wait()
        try:
            with gov.session() as session:
                submit_vote(session, actor=gov.voters[who], data=ballots[who])
            outcomes[who] = "recorded"
        except Conflict as exc:
            outcomes[who] = exc.code

    threads = [threading.Thread(target=cast, args=(who,)) for who in ballots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The first to commit decides; the other finds the proposal closed, and says so.
    assert sorted(outcomes.values()) == ["recorded", "voting_closed"]
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.status is ProposalStatus.APPLIED
        assert session.scalar(select(func.count()).select_from(Vote)) == 2
        adopted = session.scalar(
            select(func.count())
            .select_from(AgreementEvent)
            .where(AgreementEvent.kind == EventKind.ADOPTED)
        )
        assert adopted == 1
        assert agreement(session, gov).status is AgreementStatus.ACTIVE


def test_two_board_changes_decided_at_once_put_one_board_in_force(fresh_db: Database) -> None:
    with fresh_db.session() as session:
        world = build_world(session)
    gov = build_gov(fresh_db, world)
    members = [gov.agencies[w] for w in ("da", "court", "city")]
    pids = []
    with gov.session() as session:
        board.current_board(session)
    for quorum in (1, 3):
        with gov.session() as session:
            pids.append(
                open_proposal(
                    session,
                    actor=gov.voters["da"],
                    data=ProposalCreate(
                        action=ProposalAction.BOARD,
                        board=BoardUpdate(members=members, quorum=quorum, solo_actions=[]),
                        summary=f"quorum {quorum}",
                        deadline=utcnow() + timedelta(days=1),
                    ),
                ).id
            )
        with gov.session() as session:
            submit_vote(
                session,
                actor=gov.voters["da"],
                data=gov.ballot(pids[-1], "da", Choice.YES, utcnow()),
            )
    voters = dict(zip(pids, ("court", "city"), strict=True))
    ballots = {pid: gov.ballot(pid, who, Choice.YES, utcnow()) for pid, who in voters.items()}
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def cast(pid: int) -> None:
        barrier.wait()
        try:
            with gov.session() as session:
                submit_vote(session, actor=gov.voters[voters[pid]], data=ballots[pid])
        except Conflict as exc:
            errors.append(exc.code)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])

    threads = [threading.Thread(target=cast, args=(pid,)) for pid in pids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Exactly one board change is applied; the other is voided or fails, never applied too.
    with gov.session() as session:
        statuses = sorted(
            session.scalars(select(Proposal.status).where(Proposal.id.in_(pids))).all()
        )
        assert statuses.count(ProposalStatus.APPLIED) == 1, (statuses, errors)
        # The loser is refused cleanly (voided, or failed naming the reason), never a crash.
        assert set(errors) <= {"voting_closed"}, errors
        assert session.scalar(select(func.max(BoardConfig.version))) == 2
