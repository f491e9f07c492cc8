"""Properties of the quorum function: the rule that decides every proposal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openpars.governance.quorum import (
    Approved,
    Ballot,
    Choice,
    Decision,
    Failed,
    Pending,
    ProposalAction,
    QuorumRule,
    Rejected,
    outcome,
)

T0 = datetime(2026, 8, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@st.composite
def rules(draw: st.DrawFn) -> QuorumRule:
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, n))
    return QuorumRule(required=k, members=frozenset(range(1, n + 1)))


@st.composite
def ballots(draw: st.DrawFn, size: int = 12) -> list[Ballot]:
    # Stakeholders 1..8 include non-members for small boards.
    return draw(
        st.lists(
            st.builds(
                Ballot,
                stakeholder=st.integers(1, 8),
                choice=st.sampled_from(Choice),
                at=st.integers(0, 100).map(at),
            ),
            max_size=size,
        )
    )


instants = st.integers(0, 120).map(at)


def rank(decision: Decision) -> int:
    """Rejected < Failed = Pending < Approved: more yes can only move a proposal up."""
    if isinstance(decision, Approved):
        return 2
    if isinstance(decision, Rejected):
        return 0
    return 1


def reference(rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime) -> str:
    """A deliberately naive restatement: replay every prefix of the time-ordered ballots."""
    horizon = min(now, deadline)
    counted = sorted(
        (b for b in votes if b.stakeholder in rule.members and b.at <= horizon),
        key=lambda b: b.at,
    )
    for end in range(1, len(counted) + 1):
        latest = {b.stakeholder: b.choice for b in counted[:end]}
        if sum(1 for c in latest.values() if c is Choice.YES) >= rule.required:
            return "approved"
    if now < deadline:
        return "pending"
    latest = {b.stakeholder: b.choice for b in counted}
    no = sum(1 for c in latest.values() if c is Choice.NO)
    return "rejected" if no > rule.size - rule.required else "failed"


def name(decision: Decision) -> str:
    return type(decision).__name__.lower()


@given(rules(), ballots(), instants, instants)
def test_matches_the_naive_reference(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime
) -> None:
    assert name(outcome(rule, votes, now, deadline)) == reference(rule, votes, now, deadline)


@given(rules(), ballots(), instants, instants, st.data())
def test_monotonic_in_yes_votes(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime, data: st.DataObject
) -> None:
    before = outcome(rule, votes, now, deadline)
    if votes:
        i = data.draw(st.integers(0, len(votes) - 1))
        changed = [
            *votes[:i],
            Ballot(votes[i].stakeholder, Choice.YES, votes[i].at),
            *votes[i + 1 :],
        ]
    else:
        changed = [Ballot(1, Choice.YES, at(0))]
    after = outcome(rule, changed, now, deadline)
    assert rank(after) >= rank(before)
    if isinstance(before, Approved):
        assert isinstance(after, Approved)
        assert after.at <= before.at


@given(rules(), ballots(), instants, instants, st.data())
def test_abstain_never_helps(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime, data: st.DataObject
) -> None:
    if not votes:
        return
    i = data.draw(st.integers(0, len(votes) - 1))
    original = votes[i]
    changed = [
        *votes[:i],
        Ballot(original.stakeholder, Choice.ABSTAIN, original.at),
        *votes[i + 1 :],
    ]
    before = outcome(rule, votes, now, deadline)
    after = outcome(rule, changed, now, deadline)
    # Abstaining instead of yes can only hurt; instead of no it cannot approve anything.
    if original.choice is Choice.YES:
        assert rank(after) <= rank(before)
    else:
        assert isinstance(after, Approved) == isinstance(before, Approved)


@given(rules(), ballots(), instants, instants, st.integers(1, 5))
def test_a_stakeholder_counts_once_however_often_it_votes(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime, repeat: int
) -> None:
    repeated = [b for b in votes for _ in range(repeat)]
    assert name(outcome(rule, repeated, now, deadline)) == name(outcome(rule, votes, now, deadline))


@given(st.integers(2, 6), st.integers(1, 20))
def test_one_stakeholder_voting_yes_many_times_is_one_yes(n: int, times: int) -> None:
    rule = QuorumRule(required=2, members=frozenset(range(1, n + 1)))
    votes = [Ballot(1, Choice.YES, at(i)) for i in range(times)]
    decision = outcome(rule, votes, at(200), at(100))
    assert not isinstance(decision, Approved)
    assert decision.tally.yes == frozenset({1})


@given(rules(), ballots(), instants, instants)
def test_non_members_and_late_ballots_are_ignored(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime
) -> None:
    counted = [b for b in votes if b.stakeholder in rule.members and b.at <= min(now, deadline)]
    assert outcome(rule, votes, now, deadline) == outcome(rule, counted, now, deadline)


@given(rules(), ballots(), instants, instants, st.randoms())
def test_order_of_submission_does_not_matter_between_distinct_instants(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime, rnd: object
) -> None:
    distinct = list({b.at: b for b in votes}.values())
    shuffled = list(distinct)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert outcome(rule, shuffled, now, deadline) == outcome(rule, distinct, now, deadline)


@given(rules(), ballots(), instants, instants)
def test_decisions_are_dated_within_the_window(
    rule: QuorumRule, votes: list[Ballot], now: datetime, deadline: datetime
) -> None:
    decision = outcome(rule, votes, now, deadline)
    if isinstance(decision, Approved):
        assert decision.at <= min(now, deadline)
        assert len(decision.tally.yes) >= rule.required
    elif isinstance(decision, Pending):
        assert now < deadline
        assert decision.needed >= 1
    else:
        assert now >= deadline
        assert decision.at == deadline


@given(st.integers(1, 8), st.integers(-3, 12))
def test_a_quorum_outside_one_to_n_is_impossible(n: int, k: int) -> None:
    members = frozenset(range(n))
    if 1 <= k <= n:
        assert QuorumRule(required=k, members=members).size == n
    else:
        with pytest.raises(ValueError, match="impossible"):
            QuorumRule(required=k, members=members)


def test_an_empty_board_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        QuorumRule(required=1, members=frozenset())


def test_two_of_three_early_approval_and_the_deciding_instant() -> None:
    rule = QuorumRule(required=2, members=frozenset({1, 2, 3}))
    votes = [
        Ballot(1, Choice.YES, at(1)),
        Ballot(2, Choice.NO, at(2)),
        Ballot(3, Choice.YES, at(3)),
    ]
    decision = outcome(rule, votes, at(10), at(60))
    assert isinstance(decision, Approved)
    assert decision.at == at(3)


def test_changed_vote_counts_its_latest_choice() -> None:
    rule = QuorumRule(required=2, members=frozenset({1, 2, 3}))
    votes = [
        Ballot(1, Choice.YES, at(1)),
        Ballot(1, Choice.NO, at(2)),
        Ballot(2, Choice.YES, at(3)),
    ]
    decision = outcome(rule, votes, at(10), at(60))
    assert isinstance(decision, Pending)
    assert decision.tally.no == frozenset({1})


def test_deadline_rejects_on_a_blocking_no_and_fails_on_silence() -> None:
    rule = QuorumRule(required=2, members=frozenset({1, 2, 3}))
    blocking = [Ballot(1, Choice.NO, at(1)), Ballot(2, Choice.NO, at(2))]
    assert isinstance(outcome(rule, blocking, at(60), at(60)), Rejected)
    silent = [Ballot(1, Choice.YES, at(1)), Ballot(2, Choice.ABSTAIN, at(2))]
    failed = outcome(rule, silent, at(61), at(60))
    assert isinstance(failed, Failed)
    assert "1 did not vote" in failed.reasons


def test_solo_actions_need_a_single_yes() -> None:
    rule = QuorumRule(
        required=2, members=frozenset({1, 2, 3}), solo=frozenset({ProposalAction.SUSPEND})
    )
    assert rule.for_action(ProposalAction.SUSPEND).required == 1
    assert rule.for_action(ProposalAction.RENEW).required == 2
    decision = outcome(
        rule.for_action(ProposalAction.SUSPEND), [Ballot(3, Choice.YES, at(5))], at(6), at(60)
    )
    assert isinstance(decision, Approved)
