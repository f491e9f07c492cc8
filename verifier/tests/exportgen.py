"""Test-only builder of audit exports, keys, checkpoints and proofs.

It uses `cryptography` and `hashlib` directly, never the package under test, and computes
trees with the RFC's recursive definitions, so the tests check the verifier against the
specification rather than against itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Collection
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ORIGIN = "openpars.example/audit"
HEADER = "openpars-audit-export/v1"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH over leaf hashes."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def inclusion_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*inclusion_path(m, leaves[:k]), mth(leaves[k:])]
    return [*inclusion_path(m - k, leaves[k:]), mth(leaves[:k])]


def consistency_path(m: int, leaves: list[bytes], whole: bool = True) -> list[bytes]:
    """RFC 9162 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*consistency_path(m, leaves[:k], whole), mth(leaves[k:])]
    return [*consistency_path(m - k, leaves[k:], False), mth(leaves[:k])]


@dataclass
class Key:
    """A named Ed25519 key of signature type 0x01 (log) or 0x04 (witness)."""

    name: str
    key_type: int
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def key_id(self) -> bytes:
        public = self.private.public_key().public_bytes_raw()
        return sha(self.name.encode() + b"\n" + bytes([self.key_type]) + public)[:4]

    @property
    def vkey(self) -> str:
        public = self.private.public_key().public_bytes_raw()
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.key_type]) + public)}"

    @property
    def skey(self) -> str:
        seed = self.private.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{b64(bytes([self.key_type]) + seed)}"

    def line(self, text: str, timestamp: int = 1_700_000_000) -> str:
        """Return this key's signature line over a note text."""
        if self.key_type == 0x04:
            message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
            raw = timestamp.to_bytes(8, "big") + self.private.sign(message)
        else:
            raw = self.private.sign(text.encode())
        return f"— {self.name} {b64(self.key_id + raw)}\n"


def log_key(name: str = ORIGIN) -> Key:
    return Key(name, 0x01)


def witness_key(name: str) -> Key:
    return Key(name, 0x04)


def checkpoint_note(
    size: int, root: bytes, log: Key, witnesses: list[Key], origin: str = ORIGIN
) -> str:
    """A signed checkpoint note, cosigned by each witness."""
    text = f"{origin}\n{size}\n{b64(root)}\n"
    return text + "\n" + log.line(text) + "".join(w.line(text) for w in witnesses)


@dataclass
class Entry:
    """One audit entry; content None means crypto-shredded."""

    index: int
    commitment: bytes
    salt: bytes | None
    content: bytes | None

    @property
    def leaf(self) -> bytes:
        return sha(b"\x00" + self.commitment)

    def line(self) -> str:
        if self.content is None or self.salt is None:
            return f"shredded {self.index} {self.commitment.hex()}"
        body = b64(self.content)
        return f"entry {self.index} {self.commitment.hex()} {self.salt.hex()} {body}"


def make_entries(
    count: int, *, shredded: Collection[int] = (), seed: int = 7, order: str | None = "MC-1"
) -> list[Entry]:
    """Entries 0..count-1 with canonical JSON-ish content and random salts.

    When entries are shredded, the last entry that is not is the `audit.shred` entry naming
    their commitments under `order` (None: no such entry, as when content is deleted directly).
    """
    rng = random.Random(seed)
    kept = [i for i in range(count) if i not in shredded]
    cover = kept[-1] if shredded and kept and order is not None else None
    raw: list[tuple[bytes, bytes]] = []
    for i in range(count):
        salt = rng.randbytes(32)
        content = f'{{"action":"read","i":{i},"user":{rng.randrange(1000)}}}'.encode()
        raw.append((salt, content))
    if cover is not None:
        named = [sha(raw[i][0] + raw[i][1]).hex() for i in sorted(shredded) if i < count]
        doc = {
            "action": "audit.shred",
            "kind": "write",
            "outcome": "ok",
            "params": {"order_reference": order, "commitments": named},
        }
        raw[cover] = (
            raw[cover][0],
            json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(),
        )
    entries = []
    for i, (salt, content) in enumerate(raw):
        commitment = sha(salt + content)
        if i in shredded:
            entries.append(Entry(i, commitment, None, None))
        else:
            entries.append(Entry(i, commitment, salt, content))
    return entries


@dataclass
class Export:
    """An export as editable lines, with the keys that signed it."""

    lines: list[str]
    entries: list[Entry]
    log: Key
    witnesses: list[Key]

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def line_of(self, prefix: str) -> int:
        """Return the position of the first line starting with prefix."""
        return next(i for i, line in enumerate(self.lines) if line.startswith(prefix))


def build_export(
    count: int,
    checkpoints: list[int],
    *,
    shredded: Collection[int] = (),
    witnesses: int = 2,
    first: int = 0,
    log: Key | None = None,
    order: str | None = "MC-1",
) -> Export:
    """Build a valid export of entries [first, count) with checkpoints at the given sizes."""
    log = log or log_key()
    cosigners = [witness_key(f"w{i}.example") for i in range(witnesses)]
    entries = make_entries(count, shredded=shredded, order=order)
    leaves = [e.leaf for e in entries]
    lines = [f"{HEADER} {first} {ORIGIN}"]
    if first:
        frontier, start = [], 0
        for level in range(first.bit_length() - 1, -1, -1):
            if first >> level & 1:
                frontier.append(mth(leaves[start : start + (1 << level)]).hex())
                start += 1 << level
        lines.append("frontier " + " ".join(frontier))

    def add_checkpoints(size: int) -> None:
        for cp in (c for c in checkpoints if c == size):
            note = checkpoint_note(cp, mth(leaves[:cp]), log, cosigners)
            lines.append("checkpoint " + b64(note.encode()))

    add_checkpoints(first)
    for entry in entries[first:]:
        lines.append(entry.line())
        add_checkpoints(entry.index + 1)
    lines.append(f"end {count}")
    return Export(lines, entries, log, cosigners)
