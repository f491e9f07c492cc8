"""Attack 6: a proposal row changed after votes were cast on it. The database refuses it.

A signed vote names the proposal by id; were the row editable, a yes for an adoption would become
a yes for a termination. Raw SQL (not the ORM) is what an attacker with a database login uses.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from openpars.governance.models import AppendOnlyError, Proposal, ProposalStatus, Vote
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.votes import submit_vote
from tests.governance.helpers import Gov


def vote(gov: Gov, pid: int, who: str, choice: Choice, minutes: float) -> ProposalStatus:
    moment = gov.at(minutes=minutes)
    with gov.session() as session:
        submit_vote(
            session, actor=gov.voters[who], data=gov.ballot(pid, who, choice, moment), now=moment
        )
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        return proposal.status


def refused(gov: Gov, statement: Any) -> None:
    """Run one raw statement; the database must refuse it and change nothing."""
    with gov.session() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
        session.rollback()


def test_what_a_vote_binds_never_changes(gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT, effective_at=gov.at(days=2))
    assert vote(gov, pid, "da", Choice.YES, 1) is ProposalStatus.OPEN
    changes: dict[str, Any] = {
        "action": "terminate",
        "content_hash": "0" * 64,
        "agreement_version": 9,
        "effective_at": gov.at(days=1),
        "new_expires_at": gov.at(days=900),
        "deadline": gov.at(days=300),
        "summary": "something else",
        "opened_by": "someone else",
        "board_config_id": 424242,
    }
    for column, value in changes.items():
        refused(gov, update(Proposal).where(Proposal.id == pid).values({column: value}))
    # Even together with a legitimate status move.
    refused(gov, update(Proposal).values(status="voided", action="terminate"))
    refused(gov, text("UPDATE governance_proposals SET action = 'terminate'"))
    refused(gov, delete(Proposal))
    refused(gov, text("DELETE FROM governance_proposals"))
    # The votes cast on it too.
    refused(gov, update(Vote).values(choice="no"))
    refused(gov, delete(Vote))
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert (proposal.action, proposal.status) == (ProposalAction.ADOPT, ProposalStatus.OPEN)
        session.delete(proposal)
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()


def test_only_forward_status_transitions(gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT, effective_at=gov.at(days=2))
    one = update(Proposal).where(Proposal.id == pid)
    # An open proposal moves only to another status.
    refused(gov, one.values(closed_reason="quietly edited"))
    refused(gov, one.values(status="open", closed_reason="x"))
    vote(gov, pid, "da", Choice.YES, 1)
    assert vote(gov, pid, "court", Choice.YES, 2) is ProposalStatus.APPROVED
    # Approved: its decision stays, and it cannot go back to open.
    refused(gov, one.values(status="open"))
    for column, value in (
        ("decided_at", gov.at(days=1)),
        ("effective_instant", gov.at(minutes=3)),
        ("final_tally", {"yes": [], "no": [], "abstain": []}),
    ):
        refused(gov, one.values(status="applied", **{column: value}))
    # A legitimate move (the one voiding does) is allowed once ...
    with gov.session() as session:
        session.execute(one.values(status="voided", closed_at=gov.at(days=1), closed_reason="x"))
    # ... and a closed proposal never moves again, nor is edited.
    refused(gov, one.values(status="applied"))
    refused(gov, one.values(closed_reason="rewritten"))
    refused(gov, one.values(status="open"))


def test_the_decision_path_still_moves_proposals(gov: Gov) -> None:
    pid = gov.propose(ProposalAction.ADOPT)
    vote(gov, pid, "da", Choice.NO, 1)
    vote(gov, pid, "da", Choice.YES, 2)
    assert vote(gov, pid, "city", Choice.YES, 3) is ProposalStatus.APPLIED
    with gov.session() as session:
        proposal = session.get(Proposal, pid)
        assert proposal is not None
        assert proposal.applied_at is not None and proposal.final_tally is not None
