"""The verifier's own proof code against the RFC 9162 vectors and the RFC's definitions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from exportgen import consistency_path, inclusion_path, mth, sha
from hypothesis import given, settings
from hypothesis import strategies as st

from openpars_verify import tlog

# The vectors are the server tests' copy (tests/data/README.md says from where): data, not code,
# so the verifier still shares no code with the server.
VECTORS = Path(__file__).resolve().parents[2] / "tests" / "data" / "rfc9162"


def vectors(kind: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no RFC 9162 vectors under {VECTORS / kind}"
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


def d(value: str) -> bytes:
    return base64.b64decode(value)


@pytest.mark.parametrize(("name", "v"), vectors("inclusion"))
def test_inclusion_vectors(name: str, v: dict[str, Any]) -> None:
    proof = [d(p) for p in v["proof"] or []]
    args = (d(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, d(v["root"]))
    if v["wantErr"]:
        with pytest.raises(tlog.ProofFailure):
            tlog.verify_inclusion(*args)
    else:
        tlog.verify_inclusion(*args)


@pytest.mark.parametrize(("name", "v"), vectors("consistency"))
def test_consistency_vectors(name: str, v: dict[str, Any]) -> None:
    proof = [d(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, d(v["root1"]), d(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(tlog.ProofFailure):
            tlog.verify_consistency(*args)
    else:
        tlog.verify_consistency(*args)


def leaves(n: int) -> list[bytes]:
    return [tlog.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=260))
def test_frontier_root_matches_definition(n: int) -> None:
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves(n)):
        tlog.append(frontier, size, leaf)
    assert len(frontier) == n.bit_count()
    assert tlog.root_of_frontier(frontier) == mth(leaves(n))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=200), st.data())
def test_inclusion_and_tamper(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = inclusion_path(index, ls)
    root = mth(ls)
    tlog.verify_inclusion(ls[index], index, n, proof, root)
    if proof:
        k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        bad = bytearray(proof[k])
        bad[bit // 8] ^= 1 << (bit % 8)
        proof[k] = bytes(bad)
        with pytest.raises(tlog.ProofFailure):
            tlog.verify_inclusion(ls[index], index, n, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_consistency_and_tamper(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    proof = consistency_path(m, ls)
    tlog.verify_consistency(m, n, proof, mth(ls[:m]), mth(ls))
    with pytest.raises(tlog.ProofFailure):
        tlog.verify_consistency(m, n, proof, mth(ls[:m]), sha(b"other"))
    k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    proof[k] = sha(proof[k])
    with pytest.raises(tlog.ProofFailure):
        tlog.verify_consistency(m, n, proof, mth(ls[:m]), mth(ls))


def test_messages_name_the_field() -> None:
    with pytest.raises(tlog.ProofFailure, match=r"proof\[1\] is 31 bytes"):
        tlog.verify_inclusion(bytes(32), 0, 4, [bytes(32), bytes(31)], bytes(32))
    with pytest.raises(tlog.ProofFailure, match="outside"):
        tlog.inclusion_root(bytes(32), 4, 4, [])
    with pytest.raises(tlog.ProofFailure, match="leaf hash"):
        tlog.inclusion_root(bytes(31), 0, 1, [])
    with pytest.raises(tlog.ProofFailure, match="smaller"):
        tlog.verify_consistency(3, 2, [], bytes(32), bytes(32))
