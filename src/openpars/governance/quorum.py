"""The quorum rule as a pure function: who voted what, and when, decides a proposal.

No database and no clock: the caller passes the votes, the current instant and the deadline,
so anyone holding an exported voting history can recompute the same outcome offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Choice(StrEnum):
    """What a stakeholder may vote; abstain counts as not yes."""

    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


class ProposalAction(StrEnum):
    """What a proposal asks the board to do to one agreement version, the site floor or itself."""

    ADOPT = "adopt"
    RENEW = "renew"
    AMEND = "amend"
    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"
    # Put a new site floor version in force (its subject is the floor, not an agreement).
    FLOOR = "floor"
    # Put a new board (members, quorum, solo actions, reminder lead) in force.
    BOARD = "board"
    # Add or remove one audit-log witness (whose cosignatures make checkpoints final).
    WITNESS = "witness"


# Actions whose subject is not an agreement (the signed vote names agreement 0 for them).
SITE_ACTIONS = frozenset({ProposalAction.FLOOR, ProposalAction.BOARD, ProposalAction.WITNESS})


# A floor change may admit more than the floor in force, a board change decides who decides
# everything else, a resumption lifts what any one stakeholder imposed, and the witnesses are who
# vouches that the log was not rewritten: all four always need the full quorum, whatever the
# board lists as solo actions (one stakeholder may cut access off alone, never restore it alone).
NEVER_SOLO = frozenset(
    {ProposalAction.FLOOR, ProposalAction.BOARD, ProposalAction.RESUME, ProposalAction.WITNESS}
)


@dataclass(frozen=True, slots=True)
class QuorumRule:
    """k yes votes from n distinct stakeholders; ``solo`` actions need one yes from any member."""

    required: int
    members: frozenset[int]
    solo: frozenset[ProposalAction] = frozenset()

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a board needs at least one stakeholder")
        if not 1 <= self.required <= len(self.members):
            raise ValueError(
                f"quorum {self.required} of {len(self.members)} is impossible; "
                f"it must be between 1 and {len(self.members)}"
            )

    @property
    def size(self) -> int:
        """n, the number of stakeholders on the board."""
        return len(self.members)

    def for_action(self, action: ProposalAction) -> QuorumRule:
        """The rule that decides a proposal of this action (a solo action needs one yes)."""
        if action in self.solo and action not in NEVER_SOLO:
            return QuorumRule(required=1, members=self.members)
        return QuorumRule(required=self.required, members=self.members)


@dataclass(frozen=True, slots=True)
class Ballot:
    """One cast or change of a vote: the stakeholder, its choice and the signed instant."""

    stakeholder: int
    choice: Choice
    at: datetime


@dataclass(frozen=True, slots=True)
class Tally:
    """The standing vote of each member stakeholder (the latest it cast)."""

    yes: frozenset[int] = frozenset()
    no: frozenset[int] = frozenset()
    abstain: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Pending:
    """Still open: the deadline has not passed and the quorum is not reached."""

    tally: Tally
    needed: int


@dataclass(frozen=True, slots=True)
class Approved:
    """The quorum was reached at ``at`` (the signed instant of the deciding vote)."""

    tally: Tally
    at: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """The deadline passed and enough members voted no that the quorum was impossible."""

    tally: Tally
    at: datetime


@dataclass(frozen=True, slots=True)
class Failed:
    """The deadline passed without a quorum (too few yes votes, not a blocking no)."""

    tally: Tally
    at: datetime
    reasons: tuple[str, ...] = field(default=())


Decision = Pending | Approved | Rejected | Failed


def outcome(
    rule: QuorumRule, votes: Iterable[Ballot], now: datetime, deadline: datetime
) -> Decision:
    """Decide a proposal: approved the moment k distinct members stand at yes, else by deadline.

    Only member ballots signed at or before both ``now`` and ``deadline`` count, and each
    member counts once, with its latest ballot. Before the deadline a proposal closes early
    only when approved, because members may still change their vote until it closes.
    """
    horizon = min(now, deadline)
    latest: dict[int, Ballot] = {}
    for ballot in _chronological(rule, votes, until=horizon):
        latest[ballot.stakeholder] = ballot
        tally = _tally(latest)
        if len(tally.yes) >= rule.required:
            return Approved(tally=tally, at=ballot.at)
    tally = _tally(latest)
    if now < deadline:
        return Pending(tally=tally, needed=rule.required - len(tally.yes))
    if len(tally.no) > rule.size - rule.required:
        return Rejected(tally=tally, at=deadline)
    missing = rule.size - len(tally.yes) - len(tally.no) - len(tally.abstain)
    reasons = (f"{len(tally.yes)} yes of {rule.required} needed", f"{missing} did not vote")
    return Failed(tally=tally, at=deadline, reasons=reasons)


def _chronological(rule: QuorumRule, ballots: Iterable[Ballot], *, until: datetime) -> list[Ballot]:
    # A stable sort keeps submission order between ballots signed at the same instant.
    counted = [b for b in ballots if b.stakeholder in rule.members and b.at <= until]
    return sorted(counted, key=lambda b: b.at)


def _tally(latest: dict[int, Ballot]) -> Tally:
    def who(choice: Choice) -> frozenset[int]:
        return frozenset(s for s, b in latest.items() if b.choice is choice)

    return Tally(yes=who(Choice.YES), no=who(Choice.NO), abstain=who(Choice.ABSTAIN))
