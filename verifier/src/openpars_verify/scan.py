"""The per-entry half of export verification, run on one chunk of the file at a time.

A chunk is a byte range of the export; it owns the lines that *begin* inside it. For each entry
line the scan checks the index sequence and `SHA-256(salt || content) == commitment`, and emits
the RFC 9162 leaf hash. Everything that needs the whole history (the Merkle frontier,
checkpoints, the end line) is left to the caller, which replays chunks strictly in file order.
Chunks are independent, so they can be scanned in parallel worker processes; the results are
the same as scanning them one after another.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from dataclasses import dataclass, field


@dataclass
class Chunk:
    """What one chunk holds, in file order."""

    # The 32-byte leaf hash of every entry (shredded or not) up to the first error, concatenated.
    leaves: bytes = b""
    # Index carried by the chunk's first entry line; the caller checks it continues the log.
    first_index: int | None = None
    # Number of lines that begin in the chunk (for line numbers in messages).
    lines: int = 0
    shredded: int = 0
    # (index, commitment) of every shredded entry line, for the coverage check.
    shreds: list[tuple[int, bytes]] = field(default_factory=list)
    # (order reference, commitments it names) of every completed `audit.shred` entry.
    covers: list[tuple[str, list[bytes]]] = field(default_factory=list)
    # Lines that are not entries: (entries before it in the chunk, line offset, the line).
    others: list[tuple[int, int, bytes]] = field(default_factory=list)
    # The first problem found, which ends the scan: (entries before it, line offset, reason).
    error: tuple[int, int, str] | None = None
    # The file ends here without a final newline: (entries before it, line offset).
    partial: tuple[int, int] | None = None


def read_lines(path: str, start: int, end: int, at_line_start: bool) -> tuple[list[bytes], bool]:
    """Return the lines beginning in [start, end), and whether the last one lacks a newline."""
    with open(path, "rb") as f:
        if at_line_start:
            f.seek(start)
        else:
            # Finish the line that byte start-1 belongs to; it is the previous chunk's.
            f.seek(start - 1)
            f.readline()
        begin = f.tell()
        if begin >= end:
            return [], False
        data = f.read(end - begin)
        if not data.endswith(b"\n"):
            # The last line began inside the chunk, so all of it is ours.
            data += f.readline()
    lines = data.split(b"\n")
    last = lines.pop()
    if last:
        lines.append(last)
        return lines, True
    return lines, False


def _position(lines: list[bytes], line: bytes) -> int:
    """Return the offset of this very line object (only needed on rare paths)."""
    return next(i for i, candidate in enumerate(lines) if candidate is line)


class _Mismatch(Exception):
    """An entry whose data does not match its commitment or position."""


def scan_chunk(path: str, start: int, end: int, at_line_start: bool) -> Chunk:
    """Verify every entry line beginning in [start, end) of the export at `path`."""
    lines, partial = read_lines(path, start, end, at_line_start)
    chunk = Chunk(lines=len(lines))
    if partial:
        # The unterminated last line is not scanned; the caller reports the truncation.
        chunk.lines -= 1
        lines.pop()
    # Locals, not globals or attributes: this loop runs once per entry, millions of times.
    sha256, unhex, b64 = hashlib.sha256, binascii.unhexlify, binascii.a2b_base64
    out = bytearray()
    others = chunk.others
    base = -1  # index of the first entry; -1 never matches, so the first entry sets it
    k = 0  # entries so far
    shredded = 0
    shreds = chunk.shreds
    mark = _SHRED_MARK
    line = b""
    try:
        for line in lines:
            try:
                tag, index, hexed, salt_hex, content = line.split(b" ")
            except ValueError:
                parts = line.split(b" ")
                if len(parts) != 3 or parts[0] != b"shredded":
                    others.append((k, _position(lines, line), line))
                    continue
                index, hexed = parts[1], parts[2]
                if int(index) != base + k:
                    base = _check_index(index, base, k)
                commitment = unhex(hexed)
                if len(commitment) != 32:
                    raise ValueError("commitment is not 64 hex digits") from None
                shredded += 1
                shreds.append((base + k, commitment))
            else:
                if tag != b"entry":
                    raise ValueError("unknown line type")
                if int(index) != base + k:
                    base = _check_index(index, base, k)
                commitment = unhex(hexed)
                salt = unhex(salt_hex)
                if len(salt) != 32:
                    raise ValueError("salt is not 64 hex digits")
                # A match also proves the commitment is 32 bytes: it equals a digest.
                data = b64(content, strict_mode=True)
                if sha256(salt + data).digest() != commitment:
                    raise _Mismatch("commitment does not match SHA-256(salt || content)")
                # A prefix test first (canonical JSON sorts its keys, so "action" comes first):
                # parsing every entry's JSON would double the cost.
                if data.startswith(mark):
                    _shred_entry(data, chunk.covers)
            out += sha256(b"\x00" + commitment).digest()
            k += 1
    except ValueError as exc:
        chunk.error = (k, _position(lines, line), f"malformed entry: {exc}")
    except _Mismatch as exc:
        chunk.error = (k, _position(lines, line), str(exc))
    if partial and chunk.error is None:
        chunk.partial = (k, len(lines))
    chunk.leaves = bytes(out)
    chunk.first_index = base if base >= 0 else None
    chunk.shredded = shredded
    return chunk


_SHRED_MARK = b'{"action":"audit.shred"'


def _shred_entry(data: bytes, covers: list[tuple[str, list[bytes]]]) -> None:
    """Record the order and commitments named by a completed shredding entry."""
    try:
        doc = json.loads(data)
    except ValueError:
        return  # not JSON: the server never writes such content, and it names nothing
    if (
        not isinstance(doc, dict)
        or doc.get("action") != "audit.shred"
        or doc.get("outcome") != "ok"
    ):
        return  # the marker inside a parameter, or a refused attempt: it covers nothing
    params = doc.get("params")
    if not isinstance(params, dict):
        return
    order, named = params.get("order_reference"), params.get("commitments")
    if not isinstance(order, str) or not order.strip() or not isinstance(named, list):
        return  # shredding without an order covers nothing
    try:
        covers.append((order, [bytes.fromhex(c) for c in named if isinstance(c, str)]))
    except ValueError:
        return


def _check_index(field: bytes, base: int, k: int) -> int:
    """Return the chunk's base index when this is its first entry; raise on a gap."""
    found = int(field)
    if base < 0 and k == 0:
        return found
    raise _Mismatch(
        f"expected entry {base + k}, found entry {found}: an entry is missing, reordered or "
        "inserted"
    )
