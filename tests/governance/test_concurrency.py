"""Votes racing to decide one proposal: the decision is applied exactly once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from openpars.agreements.models import AgreementEvent, AgreementStatus, EventKind
from openpars.db import Database, utcnow
from openpars.errors import Conflict
from openpars.governance.models import Proposal, ProposalStatus, Vote
from openpars.governance.quorum import Choice
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
