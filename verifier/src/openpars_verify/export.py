"""Streaming verification of an `openpars-audit-export/v1` file (see docs/audit-export.md).

The work is split in two. `scan.scan_chunk` does the per-entry checks on one byte range of the
file (index sequence, commitment, leaf hash) and can run in several worker processes at once.
This module replays the chunks strictly in file order: it appends their leaf hashes to the
Merkle frontier and checks checkpoints, the end line and trusted checkpoints as it goes, so
the first divergence reported is the first in the file, whatever the number of workers.

Memory stays O(log n) in the tree size: the frontier (one hash per set bit of the size), the
last checkpoint, the trusted checkpoint sizes, and a few chunks in flight.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import os
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from openpars_verify import note as notes
from openpars_verify import tlog
from openpars_verify.scan import Chunk, scan_chunk

FORMAT = b"openpars-audit-export/v1"
# Big enough that per-chunk overheads vanish, small enough that a few in flight stay cheap.
CHUNK = 1 << 22


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
    # Size of the newest checkpoint with the witness quorum; -1 when none has (or quorum 0).
    witnessed: int = -1
    # The court orders named by the shredding entries that cover the shredded entries.
    orders: tuple[str, ...] = ()


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


class _Verifier:
    """State of one pass over an export."""

    def __init__(self, trust: _Trust) -> None:
        self.trust = trust
        self.frontier: list[bytes] = []
        self.origin = ""
        self.first = 0
        self.size = 0
        self.shredded = 0
        # Shredded entries not yet named by a shredding entry: commitment -> index.
        self.uncovered: dict[bytes, int] = {}
        # Commitment -> order of every shredding entry seen so far (it may precede or follow).
        self.covered: dict[bytes, str] = {}
        self.orders: set[str] = set()
        self.checkpoints = 0
        self.trusted_checked = 0
        # The last checkpoint seen, to refuse rollbacks and forks even without --checkpoint.
        self.last_size = -1
        self.last_root = b""
        self.end_line = 0
        self.witnessed = -1

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
            # Every checkpoint must carry the log's signature; only the newest cosigned one
            # needs the witness quorum. Checkpoints signed before the witnesses joined stay
            # valid, and the replay below binds them all to the same entries, which is the
            # consistency proof to the cosigned checkpoint.
            _, cp, cosigners = notes.open_checkpoint(
                raw, self.trust.log_key, self.trust.witnesses, 0
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
        if self.trust.quorum > 0 and cosigners >= self.trust.quorum:
            self.witnessed = cp.size

    def check_trusted(self) -> None:
        want = self.trust.trusted.get(self.size)
        if want is not None:
            if tlog.root_of_frontier(self.frontier) != want:
                raise ExportFailure(
                    self.size, f"entries differ from the trusted checkpoint of size {self.size}"
                )
            self.trusted_checked += 1

    def other(self, line: bytes, lineno: int) -> None:
        """Handle a line that is not an entry; these are rare."""
        parts = line.split(b" ")
        tag = parts[0]
        if tag == b"checkpoint" and len(parts) == 2:
            self.checkpoint(parts[1])
        elif tag == b"end" and len(parts) == 2:
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
        if self.trust.quorum > 0 and self.witnessed < 0:
            raise ExportFailure(
                None,
                f"no checkpoint in the export has {self.trust.quorum} cosignatures of the "
                "given witnesses: the witnesses never vouched for this log",
            )
        self.check_shredding()
        root = tlog.root_of_frontier(self.frontier)
        return Summary(
            self.origin, self.first, self.size, root, self.checkpoints, self.shredded,
            self.trusted_checked, self.witnessed, tuple(sorted(self.orders)),
        )  # fmt: skip

    def check_shredding(self) -> None:
        """Fail unless every shredded entry is named by a shredding entry under a court order."""
        orders = set()
        for commitment, index in self.uncovered.items():
            order = self.covered.get(commitment)
            if order is None:
                raise ExportFailure(
                    index,
                    f"entry {index} was shredded but no audit.shred entry under a court order "
                    "names it: its content was deleted outside the shredding procedure (or the "
                    "export ends before the shredding entry; export through the newest "
                    "checkpoint)",
                )
            orders.add(order)
        self.orders = orders

    def next_stop(self, after: int) -> int:
        """Return the next trusted checkpoint size above `after`, or -1."""
        return min((s for s in self.trust.trusted if s > after), default=-1)

    def run(self, path: Path, jobs: int) -> Summary:
        """Verify the whole file; raise ExportFailure at the first divergence."""
        with path.open("rb") as f:
            lineno = self.head(f)
            body = f.tell()
            size = os.fstat(f.fileno()).st_size
        if self.size in self.trust.trusted:
            self.check_trusted()
        bounds = [(s, min(s + CHUNK, size)) for s in range(body, size, CHUNK)]
        # closing(): stop the workers at once when a failure ends the replay early.
        with contextlib.closing(_scan_all(str(path), bounds, body, jobs)) as chunks:
            for chunk in chunks:
                self.replay(chunk, lineno)
                lineno += chunk.lines
        return self.finish()

    def replay(self, chunk: Chunk, lineno: int) -> None:
        """Apply one scanned chunk: its leaves, its other lines, then its error, in order."""
        done = 0
        for before, offset, line in chunk.others:
            self.append(chunk, done, before, lineno + offset)
            done = before
            if self.end_line:
                raise ExportFailure(
                    self.size, f"line {lineno + offset}: content after the end line"
                )
            self.other(line, lineno + offset)
        self.shredded += chunk.shredded
        for index, commitment in chunk.shreds:
            self.uncovered[commitment] = index
        for order, named in chunk.covers:
            for commitment in named:
                self.covered[commitment] = order
        if chunk.error is not None:
            before, offset, reason = chunk.error
            self.append(chunk, done, before, lineno + offset)
            if self.end_line:
                raise ExportFailure(
                    self.size, f"line {lineno + offset}: content after the end line"
                )
            if before == 0:
                self.check_first(chunk)
            raise ExportFailure(self.size, f"line {lineno + offset}: {reason}")
        self.append(chunk, done, len(chunk.leaves) // 32, lineno + chunk.lines)
        if chunk.partial is not None:
            before, offset = chunk.partial
            if self.end_line:
                raise ExportFailure(
                    self.size, f"line {lineno + offset}: content after the end line"
                )
            raise ExportFailure(self.size, "export is truncated: its last line has no newline")

    def check_first(self, chunk: Chunk) -> None:
        """Check that a chunk's first entry continues the log (workers only see their chunk)."""
        if chunk.first_index is not None and chunk.first_index != self.size:
            raise ExportFailure(
                self.size,
                f"expected entry {self.size}, found entry {chunk.first_index}: an entry is "
                "missing, reordered or inserted",
            )

    def append(self, chunk: Chunk, lo: int, hi: int, lineno: int) -> None:
        """Append a chunk's leaf hashes lo..hi-1 to the frontier, checking trusted sizes."""
        if lo == hi:
            return
        if self.end_line:
            raise ExportFailure(self.size, f"line {lineno}: content after the end line")
        if lo == 0:
            self.check_first(chunk)
        leaves = chunk.leaves
        sha256 = hashlib.sha256
        frontier = self.frontier
        push, pop = frontier.append, frontier.pop
        n = self.size
        stop = self.next_stop(n)
        for k in range(32 * lo, 32 * hi, 32):
            leaf = leaves[k : k + 32]
            # Each trailing one bit of n is a complete subtree that now has its right sibling.
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
        self.size = n


def _scan_all(
    path: str, bounds: list[tuple[int, int]], body: int, jobs: int
) -> Generator[Chunk, None, None]:
    """Yield scanned chunks in file order, using up to `jobs` worker processes."""
    if jobs <= 1 or len(bounds) <= 1:
        for start, end in bounds:
            yield scan_chunk(path, start, end, start == body)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: deque[Future[Chunk]] = deque()
        todo = iter(bounds)
        try:
            # A bounded window keeps memory flat however far the workers run ahead.
            for start, end in todo:
                pending.append(pool.submit(scan_chunk, path, start, end, start == body))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def verify_export(
    path: Path,
    log_key: notes.PublicKey,
    *,
    witnesses: list[notes.PublicKey] | None = None,
    quorum: int = 0,
    trusted: dict[int, bytes] | None = None,
    jobs: int = 1,
) -> Summary:
    """Verify an export file; raise ExportFailure naming the first index that diverges."""
    trust = _Trust(log_key, witnesses or [], quorum, dict(trusted or {}))
    return _Verifier(trust).run(path, jobs)
