"""The proof page's path table: joining each hash on the side the page names leads from the
leaf to the root, for every leaf of trees of many sizes (RFC 9162 2.1.3.2)."""

from __future__ import annotations

import base64

from openpars.audit import merkle
from openpars.web.pages.audit import _path


class Leaves:
    """A node store over a list of leaf hashes (complete subtrees computed on demand)."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes

    def node(self, level: int, index: int) -> bytes:
        width = 1 << level
        return merkle.root_from_leaf_hashes(self.hashes[index * width : (index + 1) * width])


def test_the_sides_lead_to_the_root() -> None:
    for size in range(1, 34):
        hashes = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(size)]
        store = Leaves(hashes)
        root = merkle.root_from_leaf_hashes(hashes)
        for index in range(size):
            proof = merkle.inclusion_proof(store, index, size)
            steps = _path(index, size, [base64.b64encode(h).decode() for h in proof])
            value = hashes[index]
            for step in steps:
                sibling = bytes.fromhex(step["hex"])
                if step["side"] == "left":
                    value = merkle.node_hash(sibling, value)
                else:
                    value = merkle.node_hash(value, sibling)
            assert value == root, (size, index)
