"""Tests for RFC 9162 hashing, proof generation and verification in openpars.audit.merkle."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openpars.audit import merkle
from openpars.audit.merkle import ProofError

# The vectors are copied into the repository (tests/data/README.md says from where).
VECTORS = Path(__file__).resolve().parents[1] / "data" / "rfc9162"


class DictStore:
    """An in-memory node store that counts reads, to check the O(log n) bound."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[(level, index)]


def build(size: int) -> tuple[list[bytes], DictStore, merkle.Frontier]:
    """Build a tree of `size` distinct leaves through the incremental appender."""
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(size)]
    store = DictStore()
    frontier = merkle.EMPTY_FRONTIER
    for leaf in leaves:
        result = merkle.append_leaf(frontier, leaf)
        frontier = result.frontier
        for level, index, value in result.nodes:
            store.nodes[(level, index)] = value
    return leaves, store, frontier


def flip(value: bytes, bit: int) -> bytes:
    """Return value with one bit inverted."""
    data = bytearray(value)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def load_vectors(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Load the transparency-dev JSON vectors for `kind` (inclusion or consistency)."""
    files = sorted((VECTORS / kind).rglob("*.json"))
    # A missing directory must fail loudly rather than make the vector tests vacuous.
    assert files, f"no RFC 9162 vectors under {VECTORS / kind}"
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


def b64(value: str) -> bytes:
    return base64.b64decode(value)


@pytest.mark.parametrize(("name", "vector"), load_vectors("inclusion"))
def test_inclusion_vectors(name: str, vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    args = (b64(vector["leafHash"]), vector["leafIdx"], vector["treeSize"], proof)
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args, b64(vector["root"]))
    else:
        merkle.verify_inclusion(*args, b64(vector["root"]))


@pytest.mark.parametrize(("name", "vector"), load_vectors("consistency"))
def test_consistency_vectors(name: str, vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    args = (vector["size1"], vector["size2"], proof, b64(vector["root1"]), b64(vector["root2"]))
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_hash_domain_separation() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert merkle.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()


def test_known_root_of_eight_leaves() -> None:
    # The RFC 6962 reference tree: leaves are the bytes listed in the transparency-dev tests.
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
    data += [b"\x50\x51\x52\x53\x54\x55\x56\x57", b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69"]
    data[7] += b"\x6a\x6b\x6c\x6d\x6e\x6f"
    root = merkle.root_from_leaf_hashes([merkle.leaf_hash(d) for d in data])
    assert base64.b64encode(root).decode() == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="


def test_frontier_coordinates() -> None:
    assert merkle.frontier_coordinates(0) == []
    assert merkle.frontier_coordinates(13) == [(3, 0), (2, 2), (0, 12)]


def test_frontier_from_store_matches_appender() -> None:
    _, store, frontier = build(77)
    assert merkle.frontier_from_store(store, 77) == frontier


def test_frontier_rejects_wrong_hash_count() -> None:
    with pytest.raises(ProofError):
        merkle.Frontier(3, (b"\x00" * 32,))


def test_append_reports_new_nodes() -> None:
    _, _, frontier = build(3)
    result = merkle.append_leaf(frontier, merkle.leaf_hash(b"x"))
    # Appending the 4th leaf completes subtrees at levels 0, 1 and 2.
    assert [(level, index) for level, index, _ in result.nodes] == [(0, 3), (1, 1), (2, 0)]
    assert result.frontier.size == 4
    assert len(result.frontier.hashes) == 1


def test_append_rejects_short_leaf() -> None:
    with pytest.raises(ProofError, match="31 bytes"):
        merkle.append_leaf(merkle.EMPTY_FRONTIER, b"\x00" * 31)


def test_append_leaves_batch() -> None:
    leaves, store, frontier = build(10)
    batch = merkle.append_leaves(merkle.EMPTY_FRONTIER, leaves)
    assert batch.frontier == frontier
    assert batch.root == merkle.root_from_leaf_hashes(leaves)
    assert {(lv, ix): h for lv, ix, h in batch.nodes} == store.nodes


def test_generation_rejects_bad_sizes() -> None:
    _, store, _ = build(4)
    with pytest.raises(ProofError):
        merkle.inclusion_proof(store, 4, 4)
    with pytest.raises(ProofError):
        merkle.inclusion_proof(store, -1, 4)
    with pytest.raises(ProofError):
        merkle.consistency_proof(store, 0, 4)
    with pytest.raises(ProofError):
        merkle.consistency_proof(store, 5, 4)
    with pytest.raises(ProofError):
        merkle.root_from_store(store, -1)
    assert merkle.consistency_proof(store, 4, 4) == []
    assert merkle.root_from_store(store, 0) == merkle.EMPTY_ROOT


def test_verify_rejects_structural_errors() -> None:
    leaves, store, frontier = build(5)
    root = merkle.root_from_frontier(frontier)
    proof = merkle.inclusion_proof(store, 4, 5)
    with pytest.raises(ProofError, match="longer"):
        merkle.verify_inclusion(leaves[4], 4, 5, [*proof, proof[0]], root)
    with pytest.raises(ProofError, match="shorter"):
        merkle.verify_inclusion(leaves[0], 0, 5, merkle.inclusion_proof(store, 0, 5)[:-1], root)
    with pytest.raises(ProofError, match="proof\\[0\\]"):
        merkle.verify_inclusion(leaves[4], 4, 5, [proof[0][:31]], root)
    cons = merkle.consistency_proof(store, 3, 5)
    old = merkle.root_from_leaf_hashes(leaves[:3])
    with pytest.raises(ProofError, match="too long"):
        merkle.verify_consistency(3, 5, [*cons, cons[0]], old, root)
    with pytest.raises(ProofError, match="too short"):
        merkle.verify_consistency(3, 5, cons[:-1], old, root)
    with pytest.raises(ProofError, match="empty"):
        merkle.verify_consistency(3, 5, [], old, root)
    with pytest.raises(ProofError, match="equal sizes"):
        merkle.verify_consistency(5, 5, [root], root, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_inclusion_proofs_verify_in_log_reads(size: int, data: st.DataObject) -> None:
    leaves, store, frontier = build(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = merkle.root_from_frontier(frontier)
    store.reads = 0
    proof = merkle.inclusion_proof(store, index, size)
    # One read per proof node plus at most one ragged right-edge node built from log n reads.
    assert store.reads <= 2 * size.bit_length()
    merkle.verify_inclusion(leaves[index], index, size, proof, root)
    assert merkle.root_from_inclusion_proof(leaves[index], index, size, proof) == root


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_frontier_root_equals_full_list_root(size: int) -> None:
    leaves, store, frontier = build(size)
    expected = merkle.root_from_leaf_hashes(leaves)
    assert merkle.root_from_frontier(frontier) == expected
    assert merkle.root_from_store(store, size) == expected


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_verify(size: int, data: st.DataObject) -> None:
    leaves, store, _ = build(size)
    old = data.draw(st.integers(min_value=1, max_value=size))
    store.reads = 0
    proof = merkle.consistency_proof(store, old, size)
    assert store.reads <= 3 * size.bit_length()
    old_root = merkle.root_from_leaf_hashes(leaves[:old])
    new_root = merkle.root_from_leaf_hashes(leaves)
    merkle.verify_consistency(old, size, proof, old_root, new_root)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_inclusion_flipped_bit_fails(size: int, data: st.DataObject) -> None:
    leaves, store, frontier = build(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = merkle.root_from_frontier(frontier)
    proof = merkle.inclusion_proof(store, index, size)
    bit = data.draw(st.integers(min_value=0, max_value=(len(proof) + 2) * 256 - 1))
    leaf = leaves[index]
    target, offset = divmod(bit, 256)
    if target == 0:
        leaf = flip(leaf, offset)
    elif target == 1:
        root = flip(root, offset)
    else:
        proof[target - 2] = flip(proof[target - 2], offset)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_consistency_flipped_bit_fails(size: int, data: st.DataObject) -> None:
    leaves, store, _ = build(size)
    old = data.draw(st.integers(min_value=1, max_value=size - 1))
    proof = merkle.consistency_proof(store, old, size)
    roots = [merkle.root_from_leaf_hashes(leaves[:old]), merkle.root_from_leaf_hashes(leaves)]
    bit = data.draw(st.integers(min_value=0, max_value=(len(proof) + 2) * 256 - 1))
    target, offset = divmod(bit, 256)
    if target < 2:
        roots[target] = flip(roots[target], offset)
    else:
        proof[target - 2] = flip(proof[target - 2], offset)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, size, proof, roots[0], roots[1])


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_inclusion_wrong_index_fails(size: int, data: st.DataObject) -> None:
    leaves, store, frontier = build(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    proof = merkle.inclusion_proof(store, index, size)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            leaves[index], other, size, proof, merkle.root_from_frontier(frontier)
        )
