"""A small C2SP witness: cosign a checkpoint only if it extends the last one seen for its log.

State is one file per origin holding the last cosigned checkpoint note. It is replaced
atomically (write, fsync, rename, fsync directory) and written *before* the cosignature is
released, so a crash can never leave a cosignature for a tree the witness has not recorded;
otherwise a later, forked checkpoint could be cosigned too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from openpars_verify import note as notes
from openpars_verify import tlog

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; one witness process at a time.
    fcntl = None  # type: ignore[assignment]


class WitnessRefusal(Exception):
    """The witness will not cosign: a rollback, a fork or a failed consistency proof."""


def state_path(state_dir: Path, origin: str) -> Path:
    """Return the state file for a log origin (hashed, since origins contain '/')."""
    return state_dir / f"{hashlib.sha256(origin.encode()).hexdigest()}.checkpoint"


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with (state_dir / ".lock").open("a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _check_extends(old: notes.Checkpoint, new: notes.Checkpoint, proof: list[bytes]) -> None:
    if new.size < old.size:
        raise WitnessRefusal(f"rollback: size {new.size} is smaller than seen size {old.size}")
    if new.size == old.size:
        if new.root != old.root:
            raise WitnessRefusal(f"fork: size {new.size} was seen with a different root")
        return
    if old.size == 0:
        return  # Every tree extends the empty tree.
    try:
        tlog.verify_consistency(old.size, new.size, proof, old.root, new.root)
    except tlog.ProofFailure as exc:
        raise WitnessRefusal(
            f"consistency proof from size {old.size} to {new.size} fails: {exc}"
        ) from None


def cosign(
    state_dir: Path,
    log_key: notes.PublicKey,
    signer: notes.PrivateKey,
    note_raw: bytes,
    proof: list[bytes],
    now: int,
) -> str:
    """Verify and record a checkpoint, then return the witness's cosignature line."""
    if signer.key_type != notes.COSIGNER_KEY:
        raise notes.NoteFailure("the witness key must be a cosigner key (keygen --cosigner)")
    signed, checkpoint, _ = notes.open_checkpoint(note_raw, log_key, [], 0)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir, checkpoint.origin)
    with _locked(state_dir):
        old: notes.Checkpoint | None = None
        if path.exists():
            # The stored note is re-verified so a tampered state file cannot steer the witness.
            _, old, _ = notes.open_checkpoint(path.read_bytes(), log_key, [], 0)
            if old.origin != checkpoint.origin:
                raise WitnessRefusal(f"state file {path.name} is for another origin")
            _check_extends(old, checkpoint, proof)
        if old is None or checkpoint.size > old.size:
            _write_atomically(path, note_raw)
    return notes.cosignature_line(signed.text, signer, now)
