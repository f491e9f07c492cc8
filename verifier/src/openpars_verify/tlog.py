"""RFC 9162 Merkle tree hashing and proof verification, written independently of the server.

Proofs are checked by splitting them into an "inner" part (siblings below the point where the
leaf's path and the tree's right edge meet) and a "border" part (left siblings along the right
edge), the decomposition used by transparency-dev/merkle. The server checks proofs with the
RFC's bit-walking loop instead, so one mistake is unlikely to be made the same way twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofFailure(Exception):
    """A proof, size or hash is malformed or does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Return (inner, border) proof lengths for leaf `index` in a tree of `size`."""
    # Levels below the highest bit where index and the last leaf differ are inner nodes;
    # above that, the path follows the right edge and only its left siblings are sent.
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        seed = node_hash(sibling, seed) if index >> level & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Only left siblings belong to the smaller (older) tree.
    for level, sibling in enumerate(proof):
        if index >> level & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        if len(item) != HASH_SIZE:
            raise ProofFailure(f"proof[{i}] is {len(item)} bytes, want {HASH_SIZE}")


def inclusion_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root an inclusion proof leads to; raise ProofFailure if malformed."""
    if not 0 <= index < size:
        raise ProofFailure(f"index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofFailure(f"leaf hash is {len(leaf)} bytes, want {HASH_SIZE}")
    _check_hashes(proof)
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofFailure(f"proof has {len(proof)} hashes, want {inner + border}")
    return _chain_border(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofFailure unless `leaf` is at `index` of the tree (`size`, `root`)."""
    if inclusion_root(leaf, index, size, proof) != root:
        raise ProofFailure("proof does not lead to the given root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Raise ProofFailure unless tree (new_size, new_root) extends (old_size, old_root)."""
    if new_size < old_size:
        raise ProofFailure(f"new size {new_size} is smaller than old size {old_size}")
    if old_size == 0:
        # Any tree extends the empty tree; a proof "from 0" proves nothing and is refused.
        raise ProofFailure("no consistency proof from an empty tree")
    _check_hashes(proof)
    if old_size == new_size:
        if proof:
            raise ProofFailure("sizes are equal but the proof is not empty")
        if old_root != new_root:
            raise ProofFailure("sizes are equal but the roots differ")
        return
    inner, border = _decompose(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1
    inner -= shift
    # The proof opens with the root of the largest complete subtree ending at old_size, unless
    # the old tree is that subtree itself, whose root the verifier already has.
    start = 0 if old_size == 1 << shift else 1
    if len(proof) != start + inner + border:
        raise ProofFailure(f"proof has {len(proof)} hashes, want {start + inner + border}")
    seed = old_root if start == 0 else proof[0]
    rest = proof[start:]
    mask = (old_size - 1) >> shift
    old_calc = _chain_border(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if old_calc != old_root:
        raise ProofFailure("proof does not lead to the old root")
    new_calc = _chain_border(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if new_calc != new_root:
        raise ProofFailure("proof does not lead to the new root")


def root_of_frontier(frontier: Sequence[bytes]) -> bytes:
    """Return the root of a tree from its right frontier (complete subtrees, left first)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def append(frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Append a leaf hash to a frontier of a tree of `size`, in place."""
    # Each trailing one bit of size is a complete subtree waiting for a right sibling.
    while size & 1:
        leaf = node_hash(frontier.pop(), leaf)
        size >>= 1
    frontier.append(leaf)
