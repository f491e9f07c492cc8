"""RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and proof verification.

The server keeps the hash of every complete subtree in a table, addressed by (level, index):
the node at (level, index) covers leaves [index * 2**level, (index + 1) * 2**level). Any other
node of a tree of size n (one on the ragged right edge) is derived from at most log2(n) complete
subtrees, so a proof costs O(log n) reads of the store.

Pure standard library; no I/O. Verification functions raise `ProofError` rather than return a
boolean, so a forgotten check cannot silently pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# RFC 9162 section 2.1.1: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, size or hash failed validation or verification."""


class NodeStore(Protocol):
    """Read access to stored complete-subtree hashes."""

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of the complete subtree covering [index*2**level, (index+1)*2**level)."""
        ...


Node = tuple[int, int, bytes]
"""A complete subtree to store: (level, index, hash)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """Return the largest power of two strictly smaller than size (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the tree head MTH of a list of leaf hashes, by the RFC's recursive definition."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def _range_hash(store: NodeStore, start: int, end: int) -> bytes:
    """Return MTH of leaves [start, end), reading one stored node per complete subtree."""
    size = end - start
    # A power-of-two range that starts on its own boundary is a stored complete subtree.
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return store.node(level, start >> level)
    k = _split(size)
    return node_hash(_range_hash(store, start, start + k), _range_hash(store, start + k, end))


def root_from_store(store: NodeStore, size: int) -> bytes:
    """Return the root of the first `size` leaves from stored complete subtrees."""
    if size < 0:
        raise ProofError(f"tree size {size} is negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """Return the RFC 9162 inclusion proof PATH(index, D[0:size]), leaf end first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    # Walk from the root down to the leaf; the RFC lists siblings from the leaf up, hence the
    # reversal at the end. Only the first right sibling can be a ragged (incomplete) subtree.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(_range_hash(store, start + k, end))
            end = start + k
        else:
            proof.append(_range_hash(store, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """Return the RFC 9162 consistency proof PROOF(old_size, D[0:new_size])."""
    if old_size <= 0:
        # Everything is consistent with the empty tree, so such a proof proves nothing.
        raise ProofError(f"no consistency proof from tree size {old_size}")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    proof: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    # Iterative SUBPROOF(m, D[start:end], whole) from RFC 9162 section 2.1.4.1.
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(_range_hash(store, start + k, end))
            end = start + k
        else:
            proof.append(_range_hash(store, start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        proof.append(_range_hash(store, start, end))
    proof.reverse()
    return proof


@dataclass(frozen=True, slots=True)
class Frontier:
    """The right frontier of a tree: its complete subtrees for each set bit of size, left first."""

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ProofError(f"a frontier of size {self.size} needs {self.size.bit_count()} hashes")


EMPTY_FRONTIER = Frontier(0, ())


def frontier_coordinates(size: int) -> list[tuple[int, int]]:
    """Return the (level, index) of each frontier subtree of a tree of `size`, left first."""
    coordinates: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            coordinates.append((level, start >> level))
            start += 1 << level
    return coordinates


def frontier_from_store(store: NodeStore, size: int) -> Frontier:
    """Load the right frontier of a tree of `size` from the store in popcount(size) reads."""
    hashes = tuple(store.node(level, index) for level, index in frontier_coordinates(size))
    return Frontier(size, hashes)


def root_from_frontier(frontier: Frontier) -> bytes:
    """Return the tree root from its right frontier, folding the ragged edge from the right."""
    if not frontier.hashes:
        return EMPTY_ROOT
    root = frontier.hashes[-1]
    for left in reversed(frontier.hashes[:-1]):
        root = node_hash(left, root)
    return root


@dataclass(frozen=True, slots=True)
class Appended:
    """The result of appending leaves: the new frontier and the complete subtrees to store."""

    frontier: Frontier
    nodes: tuple[Node, ...]

    @property
    def root(self) -> bytes:
        """Return the new root; computed on demand, as batch appends rarely need each one."""
        return root_from_frontier(self.frontier)


def append_leaf(frontier: Frontier, leaf: bytes) -> Appended:
    """Append one leaf hash; return the newly completed subtrees and the new root."""
    _check_hash(leaf, "leaf hash")
    index = frontier.size
    hashes = list(frontier.hashes)
    nodes: list[Node] = [(0, index, leaf)]
    current, level, position = leaf, 0, index
    # Each trailing one bit of the old size is a complete subtree of equal height to merge with.
    while position & 1:
        current = node_hash(hashes.pop(), current)
        level += 1
        position >>= 1
        nodes.append((level, position, current))
    hashes.append(current)
    return Appended(Frontier(index + 1, tuple(hashes)), tuple(nodes))


def append_leaves(frontier: Frontier, leaves: Iterable[bytes]) -> Appended:
    """Append many leaf hashes; return every completed subtree and the final root."""
    nodes: list[Node] = []
    for leaf in leaves:
        result = append_leaf(frontier, leaf)
        frontier = result.frontier
        nodes.extend(result.nodes)
    return Appended(frontier, tuple(nodes))


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        _check_hash(item, f"proof[{i}]")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root implied by an inclusion proof (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "leaf hash")
    _check_proof(proof)
    fn, sn, result = index, size - 1, leaf
    for item in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(item, result)
            # Skip the levels where this node is a right-edge node without a sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, item)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` is at `index` in the tree of `size` with `root`; raise ProofError."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree (new_size, new_root) extends (old_size, old_root); raise ProofError."""
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size <= 0:
        raise ProofError(f"no consistency proof from tree size {old_size}")
    _check_proof(proof)
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if old_root != new_root:
            raise ProofError("equal sizes but different roots")
        return
    path = list(proof)
    # When the old tree is a complete subtree, its root is the first node and is not sent.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ProofError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_result = new_result = path[0]
    for item in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            old_result = node_hash(item, old_result)
            new_result = node_hash(item, new_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_result = node_hash(new_result, item)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if old_result != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if new_result != new_root:
        raise ProofError("consistency proof does not lead to the new root")
