"""Signed C2SP checkpoints of the log, the log's signing key, and checkpoint finality."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from openpars.audit import notes
from openpars.audit import repository as repo
from openpars.audit.events import AuditEvent, AuditKind
from openpars.audit.log import integrate, root_at
from openpars.audit.models import AuditCheckpoint
from openpars.audit.service import append
from openpars.config import Settings
from openpars.db import utcnow
from openpars.errors import NotFound

KEY_FILE = "audit-log.key"


def log_origin(settings: Settings) -> str:
    """The checkpoint origin, which is also the log key's name."""
    if settings.log_origin:
        return settings.log_origin
    # Key names may not contain spaces or '+', so a site name like "City of X" is joined.
    site = "-".join(settings.site_name.replace("+", "-").split())
    return f"{site}/audit"


def key_path(settings: Settings) -> Path:
    """Where the log's signing key lives: the configured path, or beside the SQLite file."""
    if settings.log_key_path is not None:
        return settings.log_key_path
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            return Path(database).resolve().parent / KEY_FILE
    return Path.cwd() / KEY_FILE


@dataclass(frozen=True, slots=True)
class LogKey:
    """The log's signer and whether it was generated just now."""

    signer: notes.Signer
    generated: bool

    @property
    def vkey(self) -> str:
        """The public verifier key string stakeholders configure."""
        return notes.encode_verifier_key(self.signer.verifier())


def load_or_create_key(settings: Settings) -> LogKey:
    """Read the signing key file, or generate one (mode 0600) on first run."""
    path = key_path(settings)
    origin = log_origin(settings)
    if path.exists():
        signer = notes.parse_signer_key(path.read_text(encoding="ascii"))
        if signer.name != origin:
            raise notes.NoteError(
                f"the log key in {path} is named {signer.name!r} but log_origin is {origin!r}; "
                "use the key made for this origin or set OPENPARS_LOG_ORIGIN to match"
            )
        return LogKey(signer, generated=False)
    skey, _ = notes.generate_keys(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: the key file appears
    # complete or not at all. If two processes start at once, the link of one fails and it
    # reads the other's key (a reader never sees a file that is created but not yet written).
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(skey + "\n")
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_or_create_key(settings)
    finally:
        os.unlink(temporary)
    return LogKey(notes.parse_signer_key(skey), generated=True)


def _audit_key(session: Session, key: LogKey, previous: str | None) -> None:
    """Record a new or changed log key as a KEY entry (CJIS: key changes are audited)."""
    action = "audit.log_key.generated" if previous is None else "audit.log_key.changed"
    params = {"vkey": key.vkey, "previous_vkey": previous}
    append(session, AuditEvent(kind=AuditKind.KEY, action=action, username="system", params=params))


def publish(
    session: Session, *, settings: Settings, key: LogKey | None = None
) -> AuditCheckpoint | None:
    """Sign a checkpoint of the integrated tree unless one of this size exists already."""
    key = key or load_or_create_key(settings)
    repo.lock_log(session)
    latest = repo.latest_checkpoint(session)
    previous = latest.log_vkey if latest is not None else None
    if key.vkey != previous and (key.generated or previous is not None):
        # Integrated at once, so the first checkpoint under the new key already covers the
        # entry that announces it.
        _audit_key(session, key, previous)
        integrate(session)
    size = repo.tree_size(session)
    if latest is not None and latest.size == size:
        return None
    root = root_at(session, size)
    body = notes.Checkpoint(log_origin(settings), size, root).body()
    checkpoint = AuditCheckpoint(
        size=size,
        root=root,
        note=notes.sign_note(body, [key.signer]),
        log_vkey=key.vkey,
        created_at=utcnow(),
    )
    repo.add(session, checkpoint)
    return checkpoint


def cosigned_note(session: Session, checkpoint: AuditCheckpoint) -> str:
    """The checkpoint note with every stored witness cosignature line appended."""
    lines = "".join(c.line for c in repo.cosignatures_of(session, checkpoint.id))
    return checkpoint.note + lines


def latest(session: Session) -> AuditCheckpoint:
    """The newest checkpoint, or NotFound before the first one is published."""
    checkpoint = repo.latest_checkpoint(session)
    if checkpoint is None:
        raise NotFound(
            "no checkpoint has been published yet; the publisher signs one within a minute "
            "of start-up (or run 'openpars audit checkpoint')",
            field="checkpoint",
        )
    return checkpoint


def by_size(session: Session, size: int) -> AuditCheckpoint:
    """The checkpoint of exactly `size`, or NotFound."""
    checkpoint = repo.checkpoint_of_size(session, size)
    if checkpoint is None:
        raise NotFound(f"no checkpoint of size {size} was published", field="size")
    return checkpoint


def witness_verifiers(session: Session) -> list[notes.Verifier]:
    """Verifier keys of the active witnesses."""
    return [notes.parse_verifier_key(w.vkey) for w in repo.active_witnesses(session)]


def cosigner_count(session: Session, checkpoint: AuditCheckpoint) -> int:
    """Distinct active witnesses whose stored cosignature of the checkpoint verifies."""
    note = cosigned_note(session, checkpoint)
    return notes.count_witness_cosignatures(note, witness_verifiers(session))


def is_final(session: Session, checkpoint: AuditCheckpoint, *, quorum: int) -> bool:
    """Whether enough distinct witnesses cosigned the checkpoint."""
    return cosigner_count(session, checkpoint) >= quorum
