"""Audit-log witnesses change only by a board decision (a ``witness`` proposal), or at bootstrap.

A witness proposal carries one change, ``{"op": "add"|"remove", "name", "vkey"}``; its content
hash is what the stakeholders sign, and it is reviewed against the witness set in force when it
opened (``floor_base_hash``): if another change lands first, it is void. The first witnesses
may be set once, with the first board (``openpars board init --witness``), and never again
outside a decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from openpars.agreements.schemas import sha256_hex
from openpars.audit import repository as audit_repo
from openpars.audit import witness as witnesses
from openpars.audit.events import AuditKind
from openpars.errors import Conflict, Forbidden, InvalidInput
from openpars.governance import board as boards
from openpars.governance.board import audit_act
from openpars.governance.models import BoardConfig, Proposal
from openpars.governance.schemas import BoardUpdate, ProposalCreate
from openpars.identity.principal import SYSTEM, Principal


def set_hash(session: Session) -> str:
    """The content hash of the witness set in force."""
    return sha256_hex({"witnesses": witnesses.active_set(session)})


def change_hash(document: dict[str, Any]) -> str:
    """The content hash of one witness change, as a witness proposal names it."""
    return sha256_hex(document)


def bind(session: Session, data: ProposalCreate) -> tuple[str, dict[str, Any], str]:
    """A witness proposal's subject: (change hash, change, hash of the witness set in force)."""
    stray = next(
        (name for name in ("agreement_id", "floor", "board") if getattr(data, name) is not None),
        None,
    )
    if stray is not None:
        raise InvalidInput(
            f"{stray}: a witness proposal is about the audit-log witnesses only; leave {stray} out",
            field=stray,
        )
    change = data.witness
    if change is None or (change.add is None) == (change.remove is None):
        raise InvalidInput(
            "witness: give exactly one of 'add' (a cosignature/v1 verifier key) and 'remove' "
            "(the name of an active witness)",
            field="witness",
        )
    if change.add is not None:
        verifier = witnesses.check_new(session, change.add)
        document = {"op": "add", "name": verifier.name, "vkey": change.add.strip()}
    else:
        assert change.remove is not None
        gone = witnesses.active_by_name(session, change.remove)
        document = {"op": "remove", "name": gone.name, "vkey": gone.vkey}
    proposed = change_hash(document)
    if data.content_hash is not None and data.content_hash != proposed:
        raise Conflict(
            f"content_hash: you reviewed {data.content_hash[:12]}..., but the change sent hashes "
            f"to {proposed[:12]}...; send the change you reviewed",
            field="content_hash",
        )
    return proposed, document, set_hash(session)


def stale_reason(session: Session, proposal: Proposal, *, state: str) -> str | None:
    """Why a live witness proposal is void (the witness set moved on), or None if it is not."""
    in_force = set_hash(session)
    if in_force == proposal.floor_base_hash:
        return None
    return (
        f"the witnesses changed (now {in_force[:12]}...) while the proposal was {state}; votes "
        "on it are kept but no longer count"
    )


def apply(session: Session, proposal: Proposal) -> None:
    """Make an approved witness proposal's change; its audit entry names the proposal."""
    document = proposal.floor_content
    assert document is not None, "a witness proposal holds its change"
    if change_hash(document) != proposal.content_hash:
        raise Conflict("the stored witness change does not match the hash the stakeholders signed")
    if document["op"] == "add":
        changed = witnesses.install(session, vkey=document["vkey"])
    else:
        changed = witnesses.retire(session, name=document["name"])
    audit_act(
        session,
        kind=AuditKind.CONFIG,
        action=f"audit.witness.{document['op']}",
        actor=SYSTEM,
        proposal_id=proposal.id,
        witness=changed.name,
        vkey=changed.vkey,
        content_hash=proposal.content_hash,
        decided_by=f"proposal {proposal.id}",
    )


def bootstrap(
    session: Session,
    *,
    actor: Principal,
    data: BoardUpdate,
    vkeys: list[str],
    now: datetime | None = None,
) -> BoardConfig:
    """Set the first board and, with it, the first witnesses: once, in one logged transaction.

    ``boards.bootstrap`` refuses once any board is in force, so this is the only way to add a
    witness without a quorum and it cannot be taken twice.
    """
    board = boards.bootstrap(session, actor=actor, data=data, now=now)
    if not vkeys:
        return board
    if audit_repo.all_witnesses(session):
        raise Forbidden(
            "witnesses are already registered; only the board changes them now, by a quorum "
            "decision ('openpars audit witness propose')",
            code="witness_needs_quorum",
            field="witness",
        )
    added = [witnesses.install(session, vkey=vkey) for vkey in vkeys]
    audit_act(
        session,
        kind=AuditKind.CONFIG,
        action="audit.witness.bootstrap",
        actor=actor,
        board_version=board.version,
        witnesses=[{"name": w.name, "vkey": w.vkey} for w in added],
    )
    return board
