"""Signed C2SP checkpoints of the log, the log's signing key, and checkpoint finality."""

from __future__ import annotations

import logging
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
from openpars.db import Database, utcnow
from openpars.errors import AuditUnavailable, NotFound

KEY_FILE = "audit-log.key"

log = logging.getLogger("openpars.audit.log")


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


class LogKeyRefused(AuditUnavailable):
    """The log's signing key is missing or is not the key that signed the log."""

    code = "log_key_refused"


def _read_key(path: Path, origin: str) -> LogKey:
    signer = notes.parse_signer_key(path.read_text(encoding="ascii"))
    if signer.name != origin:
        raise notes.NoteError(
            f"the log key in {path} is named {signer.name!r} but log_origin is {origin!r}; "
            "use the key made for this origin or set OPENPARS_LOG_ORIGIN to match"
        )
    return LogKey(signer, generated=False)


def key_file(settings: Settings, *, create: bool) -> LogKey | None:
    """Read the key file; if there is none, make one (mode 0600) when `create`, else None.

    This does not look at the log: callers use load_or_create_key, which does.
    """
    path = key_path(settings)
    origin = log_origin(settings)
    if path.exists():
        return _read_key(path, origin)
    if not create:
        return None
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
            return _read_key(path, origin)
    finally:
        os.unlink(temporary)
    key = LogKey(notes.parse_signer_key(skey), generated=True)
    # Loud on purpose: on a site that already had a log this line means the key was lost.
    log.warning(
        "generated a NEW audit log signing key in %s for an empty log; publish its public key "
        "to the stakeholders and keep a backup of the file: %s",
        path,
        key.vkey,
    )
    return key


def load_or_create_key(settings: Settings, session: Session) -> LogKey:
    """The log's signing key, checked against the signed log; generated only for an empty log.

    Refused (LogKeyRefused) when checkpoints exist and the key file is missing or is a
    different key: a fresh key there would let whoever holds it re-sign a rewritten history.
    """
    path = key_path(settings)
    signed = repo.latest_checkpoint(session)
    key = key_file(settings, create=signed is None)
    if key is None:
        assert signed is not None
        raise LogKeyRefused(
            f"the audit log has signed checkpoints but its signing key file {path} is missing; "
            "restore that file from backup (or point OPENPARS_LOG_KEY_PATH at it). openpars "
            "will not make a new key for a log that has a history: the key must match the "
            f"published one, {signed.log_vkey}",
            field="log_key_path",
        )
    if signed is not None and key.vkey != signed.log_vkey:
        raise LogKeyRefused(
            f"the log key in {path} ({key.vkey}) is not the key that signed the log "
            f"({signed.log_vkey}); restore the original key file. Replacing the key of a log "
            "that has a history is refused: it would let the new key re-sign rewritten entries",
            field="log_key_path",
        )
    return key


def check_key(settings: Settings, db: Database) -> LogKey:
    """Start-up check: the key that will sign, matched against the log (or made for a new one)."""
    with db.session() as session:
        return load_or_create_key(settings, session)


def _audit_key(session: Session, key: LogKey) -> None:
    """Record the generated log key as a KEY entry (CJIS: key changes are audited)."""
    params = {"vkey": key.vkey, "previous_vkey": None}
    append(
        session,
        AuditEvent(
            kind=AuditKind.KEY, action="audit.log_key.generated", username="system", params=params
        ),
    )


def publish(
    session: Session, *, settings: Settings, key: LogKey | None = None
) -> AuditCheckpoint | None:
    """Sign a checkpoint of the integrated tree unless one of this size exists already."""
    repo.lock_log(session)
    # Checked again under the log lock: the key in hand must be the key of the signed log.
    checked = load_or_create_key(settings, session)
    if key is not None and key.vkey != checked.vkey:
        raise LogKeyRefused(
            f"the log key changed on disk while the server ran ({key.vkey} -> {checked.vkey}); "
            "restore the original key file and restart",
            field="log_key_path",
        )
    key = key if key is not None else checked
    latest = repo.latest_checkpoint(session)
    if latest is None:
        # The first checkpoint announces its key in an entry it already covers.
        _audit_key(session, key)
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


def public_key(settings: Settings, session: Session) -> str:
    """The log's published verifier key: from the signed log, else from the key file."""
    signed = repo.latest_checkpoint(session)
    if signed is not None:
        return signed.log_vkey
    key = key_file(settings, create=False)
    if key is None:
        raise NotFound(
            "the log has no key yet; it is made when the server first starts on an empty log",
            field="log_key",
        )
    return key.vkey


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
