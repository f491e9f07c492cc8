"""Property: no set of accounts from fewer than the quorum's stakeholders ever changes the board.

Random sequences of board proposals and signed votes (yes, no, abstain; members, former members,
non-members, and two accounts of one stakeholder alike) run through the real services; after
every step the board in force must be the one a simple model predicts: it changes only when the
latest votes of distinct members of the board in force reach that board's quorum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openpars.errors import Conflict, DomainError, Forbidden
from openpars.governance import board, signing
from openpars.governance.quorum import Choice, ProposalAction
from openpars.governance.schemas import BoardUpdate, KeyCreate, ProposalCreate
from openpars.governance.service import open_proposal
from openpars.governance.votes import submit_vote
from openpars.identity import service as identity
from openpars.identity.roles import Role
from openpars.identity.schemas import UserCreate
from tests.governance.helpers import Gov, register

# Accounts: one voter per stakeholder, plus a second DA voter with its own DA key ("da2"): two
# accounts of one stakeholder must count as one.
POOL = ("da", "da2", "court", "city", "pretrial")
STAKEHOLDER = {"da2": "da"}


def stakeholder(who: str) -> str:
    """The stakeholder an account votes for."""
    return STAKEHOLDER.get(who, who)


def _second_da_voter(gov: Gov) -> None:
    with gov.session() as session:
        # Separation of duties: the DA's own administrator creates the voter and its key.
        user = identity.create_user(
            session,
            actor=gov.admins["da"],
            data=UserCreate(
                username="da-voter-2",
                display_name="second DA voter",
                agency_id=gov.agencies["da"],
                roles=[Role.VOTER],
            ),
        )
        gov.voters["da2"] = identity.principal_for(session, user)
        gov.keys["da2"] = Ed25519PrivateKey.generate()
        board.register_key(
            session,
            actor=gov.admins["da"],
            data=KeyCreate(public_key=signing.public_pem(gov.keys["da2"]).decode(), label="da 2"),
        )


@dataclass
class Model:
    """What the board must be, and which proposals can still change it."""

    members: frozenset[str]
    quorum: int
    live: dict[int, dict[str, Choice]] = field(default_factory=dict)
    boards: dict[int, tuple[frozenset[str], int]] = field(default_factory=dict)


@dataclass
class Clock:
    """Strictly increasing instants shared by every example (votes must be signed later)."""

    now: datetime

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def actual(gov: Gov) -> tuple[frozenset[str], int]:
    """The board in force, by stakeholder name."""
    names = {agency: name for name, agency in gov.agencies.items()}
    with gov.session() as session:
        config = board.current_board(session)
        return frozenset(names[m] for m in config.members), config.quorum


opens = st.tuples(
    st.just("open"),
    st.sets(st.sampled_from(tuple(p for p in POOL if p not in STAKEHOLDER)), min_size=1),
    st.integers(min_value=1, max_value=4),
    st.sampled_from(POOL),
)
votes = st.tuples(
    st.just("vote"),
    st.integers(min_value=0, max_value=5),
    st.sampled_from(POOL),
    st.sampled_from(list(Choice)),
)


def _open(gov: Gov, model: Model, step: tuple[str, set[str], int, str], at: datetime) -> int:
    _, members, quorum, who = step
    quorum = min(quorum, len(members))
    with gov.session() as session:
        proposal = open_proposal(
            session,
            actor=gov.voters[who],
            data=ProposalCreate(
                action=ProposalAction.BOARD,
                board=BoardUpdate(
                    members=[gov.agencies[m] for m in sorted(members)],
                    quorum=quorum,
                    solo_actions=[],
                ),
                summary="random board",
                deadline=at + timedelta(days=14),
            ),
            now=at,
        )
        return proposal.id


def _vote(gov: Gov, model: Model, pid: int, who: str, choice: Choice, at: datetime) -> None:
    """Submit a vote and check it against the model; the model follows a board change."""
    allowed = pid in model.live and stakeholder(who) in model.members
    try:
        with gov.session() as session:
            submit_vote(
                session, actor=gov.voters[who], data=gov.ballot(pid, who, choice, at), now=at
            )
    except (Forbidden, Conflict):
        refused = True
    else:
        refused = False
    if refused:
        assert not allowed, f"vote by {who} on proposal {pid} refused though the model allows it"
        return
    assert allowed, f"vote by {who} on {pid} accepted though the model refuses it"
    model.live[pid][stakeholder(who)] = choice
    yes = {s for s, c in model.live[pid].items() if c is Choice.YES and s in model.members}
    if len(yes) >= model.quorum:
        model.members, model.quorum = model.boards[pid]
        model.live.clear()  # every live proposal was opened under the board just replaced


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.one_of(opens, votes), min_size=1, max_size=10))
def test_only_the_quorum_of_the_board_in_force_changes_it(
    gov: Gov, steps: list[tuple[object, ...]]
) -> None:
    if "pretrial" not in gov.voters:
        with gov.session() as session:
            register(session, gov, "pretrial")
        _second_da_voter(gov)
    clock = getattr(gov, "_clock", None) or Clock(gov.t0)
    object.__setattr__(gov, "_clock", clock)
    members, quorum = actual(gov)
    model = Model(members=members, quorum=quorum)
    opened: list[int] = []
    for step in steps:
        at = clock.tick()
        if step[0] == "open":
            _, names, k, who = step
            assert isinstance(names, set) and isinstance(k, int) and isinstance(who, str)
            proposed = (frozenset(names), min(k, len(names)))
            try:
                pid = _open(gov, model, ("open", names, k, who), at)
            except DomainError:
                # Refused: a proposer off the board, or the board in force proposed again.
                assert stakeholder(who) not in model.members or proposed == (
                    model.members,
                    model.quorum,
                )
                continue
            model.live[pid] = {}
            model.boards[pid] = proposed
            opened.append(pid)
        elif opened:
            _, index, who, choice = step
            assert isinstance(index, int) and isinstance(who, str) and isinstance(choice, Choice)
            _vote(gov, model, opened[index % len(opened)], who, choice, at)
        assert actual(gov) == (model.members, model.quorum)
