"""Registered witnesses and their cosignatures of checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from openpars.audit import checkpoints, notes
from openpars.audit import repository as repo
from openpars.audit.models import AuditCheckpoint, AuditCosignature, AuditWitness
from openpars.db import utcnow
from openpars.errors import Conflict, Forbidden, InvalidInput, NotFound
from openpars.identity.principal import Principal
from openpars.identity.roles import Permission

# Who may see the witness list; changing it is a board decision (governance/witness_changes.py).
READERS = (Permission.AGENCY_MANAGE, Permission.AUDIT_READ)


def parse_witness_key(vkey: str) -> notes.Verifier:
    """A C2SP cosignature/v1 verifier key, or InvalidInput saying what is wrong with it."""
    try:
        verifier = notes.parse_verifier_key(vkey)
    except (notes.NoteError, ValueError) as exc:
        raise InvalidInput(f"vkey is not a C2SP verifier key: {exc}", field="vkey") from exc
    if verifier.algorithm != notes.ALG_COSIGNATURE_V1:
        raise InvalidInput(
            "vkey must be a cosignature/v1 witness key (type 0x04), not a note-signing key",
            field="vkey",
        )
    return verifier


def check_new(session: Session, vkey: str) -> notes.Verifier:
    """A key that may join the witnesses: well-formed, and its name never used before."""
    verifier = parse_witness_key(vkey)
    if repo.witness_by_name(session, verifier.name) is not None:
        raise Conflict(
            f"a witness named '{verifier.name}' is or was registered; a witness that left "
            "comes back under a new key name",
            code="witness_exists",
            field="vkey",
        )
    return verifier


def active_by_name(session: Session, name: str) -> AuditWitness:
    """An active witness by its key name, or NotFound."""
    witness = repo.witness_by_name(session, name)
    if witness is None or witness.removed_at is not None:
        raise NotFound(f"no active witness is named '{name}'", field="remove")
    return witness


def install(session: Session, *, vkey: str) -> AuditWitness:
    """Register a witness; only a board decision or the one-time bootstrap calls this."""
    verifier = check_new(session, vkey)
    witness = AuditWitness(name=verifier.name, vkey=vkey.strip(), added_at=utcnow())
    repo.add(session, witness)
    return witness


def retire(session: Session, *, name: str) -> AuditWitness:
    """Stop counting a witness (a board decision); the row and its cosignatures stay."""
    witness = active_by_name(session, name)
    witness.removed_at = utcnow()
    session.flush()
    return witness


def active_set(session: Session) -> list[dict[str, str]]:
    """The witnesses in force as a document (what a witness proposal is reviewed against)."""
    rows = sorted(repo.active_witnesses(session), key=lambda w: w.name)
    return [{"name": w.name, "vkey": w.vkey} for w in rows]


def list_witnesses(session: Session, *, actor: Principal) -> list[AuditWitness]:
    """Every registered witness, removed ones included (for administrators and auditors)."""
    if not any(actor.can(p) for p in READERS):
        actor.require(READERS[0])
    return repo.all_witnesses(session)


def _cosignature_line(submitted: str) -> notes.NoteSignature:
    """Accept a bare signature line or a whole cosigned note holding exactly one line."""
    text = submitted if submitted.endswith("\n") else submitted + "\n"
    try:
        if text.startswith(notes.SIGNATURE_PREFIX):
            # Parse the line as the signature block of a throwaway note.
            return notes.parse_note("x\n\n" + text).signatures[0]
        return notes.parse_note(text).signatures[-1]
    except notes.NoteError as exc:
        raise InvalidInput(f"cosignature is malformed: {exc}", field="cosignature") from exc


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The stored cosignature and whether the checkpoint is now final."""

    cosignature: AuditCosignature
    checkpoint: AuditCheckpoint
    witness: str
    cosigners: int
    final: bool


def submit_cosignature(session: Session, *, size: int, cosignature: str, quorum: int) -> Cosigned:
    """Verify and store a witness's cosignature of the checkpoint of `size`."""
    checkpoint = checkpoints.by_size(session, size)
    signature = _cosignature_line(cosignature)
    witness = repo.witness_by_name(session, signature.name)
    if witness is None or witness.removed_at is not None:
        raise Forbidden(
            f"'{signature.name}' is not a registered witness; the board adds one by a quorum "
            "decision ('openpars audit witness propose --add VKEY')",
            code="witness_unknown",
            field="cosignature",
        )
    verifier = notes.parse_verifier_key(witness.vkey)
    if signature.key_id != verifier.key_id:
        raise InvalidInput(
            f"the cosignature's key ID does not match witness '{witness.name}'s key",
            code="cosignature_invalid",
            field="cosignature",
        )
    note = notes.Note(notes.parse_note(checkpoint.note).text, (signature,))
    try:
        timestamp = verifier.verify(note.text, signature.signature)
    except notes.NoteError as exc:
        raise InvalidInput(
            f"the cosignature by '{witness.name}' does not verify over checkpoint {size}",
            code="cosignature_invalid",
            field="cosignature",
        ) from exc
    assert timestamp is not None  # cosignature/v1 keys always carry a timestamp
    stored = repo.cosignature_of(session, checkpoint.id, witness.id)
    if stored is None:
        stored = AuditCosignature(
            checkpoint_id=checkpoint.id,
            witness_id=witness.id,
            timestamp=timestamp,
            line=signature.line(),
            created_at=utcnow(),
        )
        repo.add(session, stored)
    count = checkpoints.cosigner_count(session, checkpoint)
    return Cosigned(stored, checkpoint, witness.name, count, count >= quorum)
