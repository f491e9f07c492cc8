"""Streaming verification of an `openpars-audit-export/v1` file (see docs/audit-export.md).

Memory stays O(log n): the verifier keeps the right frontier of the Merkle tree (one hash per
set bit of the tree size), the last checkpoint seen, and the sizes of any trusted checkpoints
given on the command line. The file is read in large blocks and split on newlines in C; the
per-entry work is three SHA-256 calls on average (commitment, leaf, one amortised merge).
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from openpars_verify import note as notes
from openpars_verify import tlog

FORMAT = b"openpars-audit-export/v1"
BLOCK = 1 << 22


class ExportFailure(Exception):
    """The export diverges; `index` is the first entry index implicated, when one is known."""

    def __init__(self, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason

    def __str__(self) -> str:
        where = f"index {self.index}: " if self.index is not None else ""
        return f"{where}{self.reason}"


@dataclass
class Summary:
    """What a successful verification covered."""

    origin: str
    first_index: int
    size: int
    root: bytes
    checkpoints: int = 0
    shredded: int = 0
    trusted_checked: int = 0


@dataclass
class _Trust:
    """Keys and policy for checkpoint notes."""

    log_key: notes.PublicKey
    witnesses: list[notes.PublicKey]
    quorum: int
    # Root by size of checkpoints obtained elsewhere (e.g. from a witness) that the export must
    # contain; they catch a rollback that also removed the later checkpoints from the file.
    trusted: dict[int, bytes] = field(default_factory=dict)


def _hash32(value: bytes, index: int, what: str) -> bytes:
    try:
        raw = binascii.unhexlify(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ExportFailure(index, f"{what} is not 64 hex digits")
    return raw


def _check_index(field_value: bytes, expected: int) -> None:
    try:
        found = int(field_value)
    except ValueError:
        raise ExportFailure(expected, f"entry index {field_value[:20]!r} is not a number") from None
    if found != expected:
        raise ExportFailure(
            expected,
            f"expected entry {expected}, found entry {found}: an entry is missing, "
            "reordered or inserted",
        )


class _Verifier:
    """State of one pass over an export."""

    def __init__(self, trust: _Trust) -> None:
        self.trust = trust
        self.frontier: list[bytes] = []
        self.origin = ""
        self.first = 0
        self.size = 0
        self.shredded = 0
        self.checkpoints = 0
        self.trusted_checked = 0
        # The last checkpoint seen, to refuse rollbacks and forks even without --checkpoint.
        self.last_size = -1
        self.last_root = b""
        self.end_line = 0

    def head(self, f: BinaryIO) -> int:
        """Read the header and, for an export not starting at 0, the frontier line."""
        parts = f.readline().rstrip(b"\n").split(b" ", 2)
        if len(parts) != 3 or parts[0] != FORMAT:
            raise ExportFailure(None, "line 1: not an openpars-audit-export/v1 header")
        if not parts[1].isdigit():
            raise ExportFailure(None, "line 1: first index is not a decimal number")
        self.first = self.size = int(parts[1])
        try:
            self.origin = parts[2].decode("utf-8")
        except UnicodeDecodeError:
            raise ExportFailure(None, "line 1: origin is not UTF-8") from None
        if not self.origin:
            raise ExportFailure(None, "line 1: origin is empty")
        if any(size < self.first for size in self.trust.trusted):
            raise ExportFailure(self.first, "a trusted checkpoint is older than the export start")
        if self.first == 0:
            return 2
        # Entries before the first index are not in the file; the frontier (their complete
        # subtrees) stands in for them, and every later checkpoint root binds it.
        parts = f.readline().rstrip(b"\n").split(b" ")
        if parts[0] != b"frontier":
            raise ExportFailure(self.first, "line 2: an export not starting at 0 needs a frontier")
        hashes = [_hash32(p, self.first, "frontier hash") for p in parts[1:]]
        if len(hashes) != self.first.bit_count():
            raise ExportFailure(
                self.first, f"frontier needs {self.first.bit_count()} hashes, has {len(hashes)}"
            )
        self.frontier[:] = hashes
        return 3

    def checkpoint(self, encoded: bytes) -> None:
        n = self.size
        try:
            raw = binascii.a2b_base64(encoded, strict_mode=True)
            _, cp, _ = notes.open_checkpoint(
                raw, self.trust.log_key, self.trust.witnesses, self.trust.quorum
            )
        except (ValueError, notes.NoteFailure) as exc:
            raise ExportFailure(n, f"checkpoint at size {n}: {exc}") from None
        if cp.origin != self.origin:
            raise ExportFailure(n, f"checkpoint origin {cp.origin!r} is not the export's origin")
        # Order matters for the message: a rollback or fork says more than a misplaced line.
        if cp.size < self.last_size:
            raise ExportFailure(
                n, f"rollback: checkpoint of size {cp.size} follows one of size {self.last_size}"
            )
        if cp.size == self.last_size and cp.root != self.last_root:
            raise ExportFailure(n, f"fork: two checkpoints of size {cp.size} with different roots")
        if cp.size != n:
            raise ExportFailure(n, f"checkpoint of size {cp.size} is placed at size {n}")
        if cp.root != tlog.root_of_frontier(self.frontier):
            since = max(self.last_size, self.first)
            raise ExportFailure(
                since,
                f"checkpoint of size {n}: root does not match the entries; "
                f"the first divergence is in [{since}, {n})",
            )
        self.last_size, self.last_root = cp.size, cp.root
        self.checkpoints += 1

    def check_trusted(self) -> None:
        want = self.trust.trusted.get(self.size)
        if want is not None:
            if tlog.root_of_frontier(self.frontier) != want:
                raise ExportFailure(
                    self.size, f"entries differ from the trusted checkpoint of size {self.size}"
                )
            self.trusted_checked += 1

    def other(self, parts: list[bytes], lineno: int) -> None:
        """Handle every line that is not an entry; these are rare."""
        tag = parts[0]
        if tag == b"checkpoint" and len(parts) == 2:
            self.checkpoint(parts[1])
        elif tag == b"end" and len(parts) == 2 and self.end_line == 0:
            if not parts[1].isdigit() or int(parts[1]) != self.size:
                raise ExportFailure(
                    self.size, f"end line says {parts[1][:20]!r}, export has {self.size} entries"
                )
            self.end_line = lineno
        else:
            raise ExportFailure(self.size, f"line {lineno}: malformed line")

    def finish(self) -> Summary:
        """Check the end of the export and summarise."""
        if self.end_line == 0:
            raise ExportFailure(self.size, f"export is truncated after {self.size} entries")
        if self.last_size != self.size:
            since = max(self.last_size, self.first)
            raise ExportFailure(
                since, f"entries [{since}, {self.size}) are not covered by a signed checkpoint"
            )
        missing = [s for s in self.trust.trusted if s > self.size]
        if missing:
            raise ExportFailure(
                self.size,
                f"rollback: trusted checkpoint of size {min(missing)}, export ends at {self.size}",
            )
        root = tlog.root_of_frontier(self.frontier)
        return Summary(
            self.origin, self.first, self.size, root, self.checkpoints, self.shredded,
            self.trusted_checked,
        )  # fmt: skip

    def next_stop(self, after: int) -> int:
        """Return the next trusted checkpoint size above `after`, or -1."""
        return min((s for s in self.trust.trusted if s > after), default=-1)

    def run(self, path: Path) -> Summary:
        """Verify the whole file; raise ExportFailure at the first divergence."""
        with path.open("rb") as f:
            lineno = self.head(f)
            if self.size in self.trust.trusted:
                self.check_trusted()
            rest = b""
            while block := f.read(BLOCK):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                self.block(lines, lineno)
                lineno += len(lines)
        if rest and self.end_line:
            raise ExportFailure(self.size, f"line {lineno}: content after the end line")
        if rest:
            raise ExportFailure(self.size, "export is truncated: its last line has no newline")
        return self.finish()

    def block(self, lines: list[bytes], lineno: int) -> None:
        """Verify a block of whole lines; the hot path, so it is written for speed.

        Lines with five fields are entries and take the fast path; anything else (shredded
        entries, checkpoints, the end line, garbage) falls out of the tuple unpacking into the
        slower branch. Line numbers are only worked out when something fails.
        """
        sha256 = hashlib.sha256
        unhex = binascii.unhexlify
        b64 = binascii.a2b_base64
        frontier = self.frontier
        push, pop = frontier.append, frontier.pop
        n = self.size
        if self.end_line and lines:
            raise ExportFailure(n, f"line {lineno}: content after the end line")
        stop = self.next_stop(n)
        shredded = 0
        line = b""
        try:
            for line in lines:
                try:
                    tag, index, hexed, salt_hex, content = line.split(b" ")
                except ValueError:
                    parts = line.split(b" ")
                    if len(parts) != 3 or parts[0] != b"shredded":
                        self.size = n
                        self.other(parts, lineno + _position(lines, line))
                        if self.end_line and line is not lines[-1]:
                            where = lineno + _position(lines, line) + 1
                            raise ExportFailure(
                                n, f"line {where}: content after the end line"
                            ) from None
                        continue
                    if int(parts[1]) != n:
                        _check_index(parts[1], n)
                    commitment = unhex(parts[2])
                    if len(commitment) != 32:
                        raise ValueError("commitment is not 64 hex digits") from None
                    shredded += 1
                else:
                    if tag != b"entry":
                        raise ValueError("unknown line type") from None
                    if int(index) != n:
                        _check_index(index, n)
                    commitment = unhex(hexed)
                    salt = unhex(salt_hex)
                    if len(salt) != 32:
                        raise ValueError("salt is not 64 hex digits")
                    # A match also proves the commitment is 32 bytes: it equals a digest.
                    if sha256(salt + b64(content, strict_mode=True)).digest() != commitment:
                        raise ExportFailure(n, "commitment does not match SHA-256(salt || content)")
                # Append the leaf; each trailing one bit of n is a subtree now complete.
                leaf = sha256(b"\x00" + commitment).digest()
                m = n
                while m & 1:
                    leaf = sha256(b"\x01" + pop() + leaf).digest()
                    m >>= 1
                push(leaf)
                n += 1
                if n == stop:
                    self.size = n
                    self.check_trusted()
                    stop = self.next_stop(n)
        except ValueError as exc:
            where = lineno + _position(lines, line)
            raise ExportFailure(n, f"line {where}: malformed entry: {exc}") from None
        finally:
            self.shredded += shredded
        self.size = n


def _position(lines: list[bytes], line: bytes) -> int:
    """Return the offset of this very line object in its block (for error messages)."""
    return next(i for i, candidate in enumerate(lines) if candidate is line)


def verify_export(
    path: Path,
    log_key: notes.PublicKey,
    *,
    witnesses: list[notes.PublicKey] | None = None,
    quorum: int = 0,
    trusted: dict[int, bytes] | None = None,
) -> Summary:
    """Verify an export file; raise ExportFailure naming the first index that diverges."""
    trust = _Trust(log_key, witnesses or [], quorum, dict(trusted or {}))
    return _Verifier(trust).run(path)
