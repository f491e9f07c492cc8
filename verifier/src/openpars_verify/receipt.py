"""Check an `openpars-receipt/v1`: one audit entry, proven to be in a signed, witnessed log.

The receipt is a JSON object (docs/audit-export.md, "Receipts"). Everything it claims is
recomputed here from its own bytes: the commitment SHA-256(salt || content), the RFC 9162 leaf
hash, the path from that leaf to the checkpoint's root, and the checkpoint's signatures by the
pinned log key and witnesses. Nothing the server computed is taken on trust.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from openpars_verify import note as notes
from openpars_verify import tlog

FORMAT = "openpars-receipt/v1"


class ReceiptFailure(Exception):
    """The receipt is malformed or something in it does not verify."""


@dataclass(frozen=True)
class Verified:
    """What a receipt proved: an entry's content (None if shredded) at a leaf of a checkpoint."""

    entry_id: int
    leaf_index: int
    checkpoint: notes.Checkpoint
    cosigners: int
    content: dict[str, Any] | None


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    # bool is an int to isinstance; a count written as true is still malformed.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ReceiptFailure(f"receipt field {name!r} is missing or not of the right type")
    return value


def _hex32(doc: dict[str, Any], name: str) -> bytes:
    text = _field(doc, name, str)
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else b""
    except ValueError:
        raw = b""
    if len(raw) != tlog.HASH_SIZE:
        raise ReceiptFailure(f"receipt field {name!r} is not 64 hex digits")
    return raw


def _load(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ReceiptFailure("the receipt is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReceiptFailure(f"the receipt is not an {FORMAT} document (its 'format' field)")
    return doc


def _content(doc: dict[str, Any], commitment: bytes) -> dict[str, Any] | None:
    """Recompute the commitment from content and salt; return the decoded content."""
    shredded = _field(doc, "shredded", bool)
    if shredded:
        if doc.get("content") is not None or doc.get("salt") is not None:
            raise ReceiptFailure("a shredded entry's receipt must carry no content and no salt")
        return None
    content = notes.b64decode(_field(doc, "content", str), "receipt content")
    salt = _hex32(doc, "salt")
    computed = hashlib.sha256(salt + content).digest()
    if computed != commitment:
        raise ReceiptFailure(
            f"SHA-256(salt || content) is {computed.hex()}, but the receipt's commitment is "
            f"{commitment.hex()}: the content or the salt was altered"
        )
    try:
        decoded = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        decoded = None
    if not isinstance(decoded, dict):
        raise ReceiptFailure("the committed content is not a JSON object (an audit entry)")
    return decoded


def verify_receipt(
    raw: bytes, log_key: notes.PublicKey, witnesses: list[notes.PublicKey], quorum: int
) -> Verified:
    """Verify a receipt end to end against the pinned keys; raise on the first mismatch."""
    doc = _load(raw)
    entry_id, index = _field(doc, "entry_id", int), _field(doc, "leaf_index", int)
    commitment = _hex32(doc, "commitment")
    content = _content(doc, commitment)
    leaf = tlog.leaf_hash(commitment)
    if leaf != _hex32(doc, "leaf_hash"):
        raise ReceiptFailure("the leaf hash is not SHA-256(0x00 || commitment)")
    proof_items = _field(doc, "proof", list)
    if not all(isinstance(p, str) for p in proof_items):
        raise ReceiptFailure("receipt field 'proof' must be a list of base64 hashes")
    proof = [notes.b64decode(p, f"proof[{i}]") for i, p in enumerate(proof_items)]
    text = _field(doc, "checkpoint", str).encode("utf-8")
    _, checkpoint, cosigners = notes.open_checkpoint(text, log_key, witnesses, quorum)
    if checkpoint.size != _field(doc, "tree_size", int):
        raise ReceiptFailure(
            f"the receipt's tree_size {doc['tree_size']} is not its checkpoint's size "
            f"{checkpoint.size}"
        )
    try:
        tlog.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)
    except tlog.ProofFailure as exc:
        raise ReceiptFailure(
            f"leaf {index} is not in the checkpoint of size {checkpoint.size}: {exc}"
        ) from None
    return Verified(entry_id, index, checkpoint, cosigners, content)


def statement(verified: Verified) -> str:
    """What the entry says: its content, decoded, or that it was shredded."""
    if verified.content is None:
        return (
            f"entry {verified.entry_id}: SHREDDED (its content and salt were deleted under a "
            "court order; only its commitment is proven)"
        )
    content = json.dumps(verified.content, indent=2, sort_keys=True, ensure_ascii=False)
    return f"entry {verified.entry_id}:\n{content}"


def ok_line(verified: Verified) -> str:
    """The one OK line (the caller adds the witness verdict)."""
    cp = verified.checkpoint
    return (
        f"OK receipt: entry {verified.entry_id} is leaf {verified.leaf_index} of {cp.origin} "
        f"at size {cp.size}; {verified.cosigners} witness cosignatures"
    )
