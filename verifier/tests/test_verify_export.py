"""The tamper matrix: every kind of change to an export is caught, at the right index."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from exportgen import (
    ORIGIN,
    Export,
    Key,
    b64,
    build_export,
    checkpoint_note,
    log_key,
    mth,
    sha,
    witness_key,
)

from openpars_verify import export, note, scan

COUNT = 40
CHECKPOINTS = [16, 32, 40]
SHREDDED = {5, 33}


MODE = {"jobs": 1}


@pytest.fixture(autouse=True, params=["whole-file", "tiny-chunks", "two-workers"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every case whole, in 97-byte chunks (lines straddle chunks), and in parallel."""
    if request.param != "whole-file":
        monkeypatch.setattr(export, "CHUNK", 97)
    MODE["jobs"] = 2 if request.param == "two-workers" else 1


@pytest.fixture
def good() -> Export:
    return build_export(COUNT, CHECKPOINTS, shredded=SHREDDED)


def run(
    tmp_path: Path,
    ex: Export,
    *,
    quorum: int = 2,
    vkey: str | None = None,
    trusted: dict[int, bytes] | None = None,
) -> export.Summary:
    path = tmp_path / "audit.export"
    path.write_text(ex.text())
    return export.verify_export(
        path,
        note.parse_public_key(vkey or ex.log.vkey),
        witnesses=[note.parse_public_key(w.vkey) for w in ex.witnesses],
        quorum=quorum,
        trusted=trusted,
        jobs=MODE["jobs"],
    )


def failure(
    tmp_path: Path,
    ex: Export,
    *,
    quorum: int = 2,
    vkey: str | None = None,
    trusted: dict[int, bytes] | None = None,
) -> export.ExportFailure:
    with pytest.raises(export.ExportFailure) as info:
        run(tmp_path, ex, quorum=quorum, vkey=vkey, trusted=trusted)
    return info.value


def entry_pos(ex: Export, index: int) -> int:
    return next(
        i
        for i, line in enumerate(ex.lines)
        if line.split(" ")[:2][-1:] == [str(index)] and line.startswith(("entry ", "shredded "))
    )


def checkpoint_pos(ex: Export, nth: int) -> int:
    return [i for i, line in enumerate(ex.lines) if line.startswith("checkpoint ")][nth]


def flip_hex(value: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[at] ^= 0x01
    return raw.hex()


def test_valid_export_verifies(tmp_path: Path, good: Export) -> None:
    summary = run(tmp_path, good)
    assert summary.size == COUNT
    assert summary.checkpoints == 3
    assert summary.shredded == 2
    assert summary.origin == ORIGIN
    assert summary.root == mth([e.leaf for e in good.entries])


def test_flipped_content_byte(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 7)
    tag, index, commitment, salt, content = good.lines[pos].split(" ")
    raw = bytearray(base64.b64decode(content))
    raw[3] ^= 0x20
    good.lines[pos] = " ".join([tag, index, commitment, salt, b64(bytes(raw))])
    err = failure(tmp_path, good)
    assert err.index == 7
    assert "commitment does not match" in str(err)


def test_flipped_character_in_content_text(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 8)
    line = good.lines[pos]
    cut = line.rindex(" ") + 10
    good.lines[pos] = line[:cut] + ("A" if line[cut] != "A" else "B") + line[cut + 1 :]
    assert failure(tmp_path, good).index == 8


def test_flipped_salt_byte(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 9)
    parts = good.lines[pos].split(" ")
    parts[3] = flip_hex(parts[3], 0)
    good.lines[pos] = " ".join(parts)
    assert failure(tmp_path, good).index == 9


def test_flipped_commitment_byte(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 12)
    parts = good.lines[pos].split(" ")
    parts[2] = flip_hex(parts[2], 31)
    good.lines[pos] = " ".join(parts)
    err = failure(tmp_path, good)
    assert err.index == 12


def test_flipped_commitment_of_shredded_entry(tmp_path: Path, good: Export) -> None:
    # With the content gone, only the next checkpoint root can catch it: the failure names the
    # range since the last good checkpoint, which must contain the changed entry.
    pos = entry_pos(good, 33)
    parts = good.lines[pos].split(" ")
    parts[2] = flip_hex(parts[2], 0)
    good.lines[pos] = " ".join(parts)
    err = failure(tmp_path, good)
    assert err.index == 32
    assert "[32, 40)" in str(err)


def test_flipped_checkpoint_root(tmp_path: Path, good: Export) -> None:
    pos = checkpoint_pos(good, 1)
    text = base64.b64decode(good.lines[pos].split(" ")[1]).decode()
    origin, size, root, rest = text.split("\n", 3)
    bad_root = b64(bytes([base64.b64decode(root)[0] ^ 1]) + base64.b64decode(root)[1:])
    good.lines[pos] = "checkpoint " + b64(f"{origin}\n{size}\n{bad_root}\n{rest}".encode())
    err = failure(tmp_path, good)
    assert err.index == 32
    assert "log signature" in str(err)


def test_signed_checkpoint_with_wrong_root(tmp_path: Path, good: Export) -> None:
    # The log itself signed a root that does not match the entries it exported.
    pos = checkpoint_pos(good, 0)
    note_text = checkpoint_note(16, sha(b"lie"), good.log, good.witnesses)
    good.lines[pos] = "checkpoint " + b64(note_text.encode())
    err = failure(tmp_path, good)
    assert err.index == 0
    assert "root does not match" in str(err)
    assert "[0, 16)" in str(err)


@pytest.mark.parametrize("which", ["log", "witness"])
def test_flipped_signature_byte(tmp_path: Path, good: Export, which: str) -> None:
    pos = checkpoint_pos(good, 2)
    text = base64.b64decode(good.lines[pos].split(" ")[1]).decode()
    lines = text.split("\n")
    row = 4 if which == "log" else 5
    name, sig = lines[row].removeprefix("— ").split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 0x80
    lines[row] = f"— {name} {b64(bytes(raw))}"
    good.lines[pos] = "checkpoint " + b64("\n".join(lines).encode())
    err = failure(tmp_path, good)
    assert err.index == 40
    assert ("log signature" if which == "log" else "cosignature") in str(err)


def test_deleted_entry(tmp_path: Path, good: Export) -> None:
    del good.lines[entry_pos(good, 9)]
    err = failure(tmp_path, good)
    assert err.index == 9
    assert "found entry 10" in str(err)


def test_reordered_entries(tmp_path: Path, good: Export) -> None:
    a, b = entry_pos(good, 20), entry_pos(good, 21)
    good.lines[a], good.lines[b] = good.lines[b], good.lines[a]
    assert failure(tmp_path, good).index == 20


def test_inserted_duplicate_entry(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 20)
    good.lines.insert(pos + 1, good.lines[pos])
    assert failure(tmp_path, good).index == 21


def test_inserted_entry_with_renumbering(tmp_path: Path, good: Export) -> None:
    # A careful forger renumbers everything after the insertion, keeps each commitment valid
    # and moves each checkpoint to its size; the next checkpoint root catches it, naming the
    # range that holds the insertion.
    good.lines = lines_with_insert(good, at=18)
    err = failure(tmp_path, good)
    assert err.index == 16
    assert "[16, 32)" in str(err)


def lines_with_insert(ex: Export, at: int) -> list[str]:
    """Return the export's lines with a valid new entry at `at` and later ones renumbered."""
    salt, content = bytes(32), b'{"action":"forged"}'
    checkpoints: dict[int, list[str]] = {}
    body: list[str] = []
    for line in ex.lines:
        parts = line.split(" ")
        if parts[0] == "checkpoint":
            size = int(base64.b64decode(parts[1]).decode().split("\n")[1])
            checkpoints.setdefault(size, []).append(line)
        elif parts[0] in ("entry", "shredded"):
            index = int(parts[1])
            if index == at:
                body.append(f"entry {at} {sha(salt + content).hex()} {salt.hex()} {b64(content)}")
            parts[1] = str(index + 1 if index >= at else index)
            body.append(" ".join(parts))
        elif parts[0] != "end":
            body.append(line)
    out: list[str] = []
    for line in body:
        out.append(line)
        if line.startswith(("entry ", "shredded ")):
            out.extend(checkpoints.get(int(line.split(" ")[1]) + 1, []))
    return [*out, f"end {len(ex.entries) + 1}"]


def test_truncated_lines(tmp_path: Path, good: Export) -> None:
    good.lines = good.lines[: entry_pos(good, 25) + 1]
    err = failure(tmp_path, good)
    assert err.index == 26
    assert "truncated" in str(err)


def test_truncated_mid_line(tmp_path: Path, good: Export) -> None:
    path = tmp_path / "audit.export"
    text = good.text()
    cut = text.index("entry 30 ") + 20
    path.write_text(text[:cut])
    with pytest.raises(export.ExportFailure) as info:
        export.verify_export(path, note.parse_public_key(good.log.vkey), jobs=MODE["jobs"])
    assert info.value.index == 30
    assert "no newline" in str(info.value)


def test_truncated_at_a_checkpoint_needs_a_trusted_checkpoint(tmp_path: Path, good: Export) -> None:
    # Cutting back to an earlier checkpoint and rewriting the end line is self-consistent; only
    # a checkpoint known from elsewhere (say a witness) reveals the rollback.
    good = build_export(COUNT, CHECKPOINTS)  # no shredding: its entry is past the cut
    latest_root = mth([e.leaf for e in good.entries])
    good.lines = [*good.lines[: checkpoint_pos(good, 1) + 1], "end 32"]
    assert run(tmp_path, good).size == 32
    err = failure(tmp_path, good, trusted={40: latest_root})
    assert err.index == 32
    assert "rollback" in str(err)


def test_trusted_checkpoint_mismatch(tmp_path: Path, good: Export) -> None:
    err = failure(tmp_path, good, trusted={20: sha(b"other")})
    assert err.index == 20
    summary = run(tmp_path, good, trusted={20: mth([e.leaf for e in good.entries[:20]])})
    assert summary.trusted_checked == 1


def test_rollback_to_an_old_checkpoint(tmp_path: Path, good: Export) -> None:
    old = good.lines[checkpoint_pos(good, 0)]
    good.lines.insert(checkpoint_pos(good, 2) + 1, old)
    err = failure(tmp_path, good)
    assert err.index == 40
    assert "rollback" in str(err)


def test_fork_two_checkpoints_of_one_size(tmp_path: Path, good: Export) -> None:
    forked = checkpoint_note(32, sha(b"fork"), good.log, good.witnesses)
    good.lines.insert(checkpoint_pos(good, 1) + 1, "checkpoint " + b64(forked.encode()))
    err = failure(tmp_path, good)
    assert err.index == 32
    assert "fork" in str(err)


def test_wrong_log_key(tmp_path: Path, good: Export) -> None:
    err = failure(tmp_path, good, vkey=log_key().vkey)
    assert err.index == 16
    assert "no signature by the log key" in str(err)


def test_unknown_key_signatures_are_ignored(tmp_path: Path, good: Export) -> None:
    pos = checkpoint_pos(good, 0)
    text = base64.b64decode(good.lines[pos].split(" ")[1]).decode()
    stranger = Key(ORIGIN, 0x01)  # same name as the log, different key: still unknown
    good.lines[pos] = "checkpoint " + b64(
        (text + stranger.line(text.split("\n\n")[0] + "\n")).encode()
    )
    assert run(tmp_path, good).checkpoints == 3


def test_signed_only_by_unknown_key(tmp_path: Path, good: Export) -> None:
    pos = checkpoint_pos(good, 0)
    stranger = log_key()
    note_text = checkpoint_note(16, mth([e.leaf for e in good.entries[:16]]), stranger, [])
    good.lines[pos] = "checkpoint " + b64(note_text.encode())
    assert failure(tmp_path, good).index == 16


def cosign_only(ex: Export, nth: int, witnesses: list[Key]) -> None:
    """Re-sign the nth checkpoint with the log key and just these witnesses."""
    size = CHECKPOINTS[nth]
    lone = checkpoint_note(size, mth([e.leaf for e in ex.entries[:size]]), ex.log, witnesses)
    ex.lines[checkpoint_pos(ex, nth)] = "checkpoint " + b64(lone.encode())


def test_only_the_newest_cosigned_checkpoint_needs_the_quorum(tmp_path: Path, good: Export) -> None:
    cosign_only(good, 1, good.witnesses[:1])
    assert run(tmp_path, good, quorum=2).witnessed == 40
    # Witness lag: the newest checkpoint not cosigned yet, an older one is what was witnessed.
    cosign_only(good, 2, [])
    summary = run(tmp_path, good, quorum=2)
    assert (summary.checkpoints, summary.witnessed) == (3, 16)
    cosign_only(good, 0, good.witnesses[:1])
    err = failure(tmp_path, good, quorum=2)
    assert "no checkpoint in the export has 2 cosignatures" in str(err)
    assert run(tmp_path, good, quorum=1).witnessed == 32


def test_a_log_signed_before_its_witnesses_joined_still_verifies(
    tmp_path: Path, good: Export
) -> None:
    cosign_only(good, 0, [])
    cosign_only(good, 1, [])
    summary = run(tmp_path, good, quorum=2)
    assert (summary.checkpoints, summary.witnessed) == (3, 40)
    # The old checkpoints are still bound to the entries the witnessed one covers.
    good.lines[entry_pos(good, 3)] = good.entries[4].line().replace("entry 4", "entry 3", 1)
    assert "root does not match" in str(failure(tmp_path, good))


def test_unknown_witness_does_not_count(tmp_path: Path, good: Export) -> None:
    stranger = witness_key("w9.example")
    for nth in range(len(CHECKPOINTS)):
        cosign_only(good, nth, [good.witnesses[0], stranger])
    assert "no checkpoint in the export has 2" in str(failure(tmp_path, good))


def test_a_replaced_log_key(tmp_path: Path, good: Export) -> None:
    # The operator who took the database re-signs the whole log with a key of its own (the
    # same origin, so the same key name). Pinned to the published key, it fails at once.
    resigned = build_export(COUNT, CHECKPOINTS, shredded=SHREDDED, witnesses=0)
    resigned.witnesses = good.witnesses
    err = failure(tmp_path, resigned, vkey=good.log.vkey)
    assert err.index == 16
    assert "no signature by the log key" in str(err)
    # Trusting the export's own key instead, the pinned witnesses still never vouched for it.
    err = failure(tmp_path, resigned, vkey=resigned.log.vkey)
    assert "no checkpoint in the export has 2 cosignatures" in str(err)


def test_origin_must_match(tmp_path: Path, good: Export) -> None:
    root = mth([e.leaf for e in good.entries[:16]])
    other = checkpoint_note(16, root, good.log, good.witnesses, origin="elsewhere.example/log")
    good.lines[checkpoint_pos(good, 0)] = "checkpoint " + b64(other.encode())
    assert "origin" in str(failure(tmp_path, good))


def test_size_zero_tree(tmp_path: Path) -> None:
    ex = build_export(0, [0])
    summary = run(tmp_path, ex)
    assert (summary.size, summary.checkpoints) == (0, 1)
    assert summary.root == sha(b"")


def test_size_one_tree(tmp_path: Path) -> None:
    ex = build_export(1, [1])
    summary = run(tmp_path, ex)
    assert summary.root == ex.entries[0].leaf


def test_all_shredded_but_the_shredding_entry_still_verifies(tmp_path: Path) -> None:
    ex = build_export(20, [7, 20], shredded=set(range(19)))
    summary = run(tmp_path, ex)
    assert summary.shredded == 19
    assert summary.orders == ("MC-1",)


# --- deleted content and shredding without an order (issue 11) ---------------------------


def test_deleted_content_fails_naming_the_entry(tmp_path: Path, good: Export) -> None:
    # Content deleted directly in the database exports as a shredded line no order names.
    entry = good.entries[21]
    good.lines[entry_pos(good, 21)] = f"shredded 21 {entry.commitment.hex()}"
    err = failure(tmp_path, good)
    assert err.index == 21
    assert "entry 21 was shredded but no audit.shred entry" in str(err)


def test_every_entry_shredded_has_no_shredding_entry(tmp_path: Path) -> None:
    ex = build_export(20, [7, 20], shredded=set(range(20)))
    assert failure(tmp_path, ex).index == 0


def test_shredding_without_an_order_fails(tmp_path: Path) -> None:
    for order in ("", "   "):
        ex = build_export(COUNT, CHECKPOINTS, shredded=SHREDDED, order=order)
        err = failure(tmp_path, ex)
        assert err.index == 5
        assert "under a court order" in str(err)


def test_a_refused_or_quoted_shredding_covers_nothing() -> None:
    # A refused attempt, one without an order, and an entry that only mentions audit.shred in
    # a parameter (say a search for that text) must not cover anything.
    named = '"commitments":["' + "ab" * 32 + '"]'
    contents = [
        '{"action":"audit.shred","outcome":"refused","params":{'
        + named
        + ',"order_reference":"MC-1"}}',
        '{"action":"audit.shred","outcome":"ok","params":{' + named + ',"order_reference":" "}}',
        '{"action":"audit.shred","outcome":"ok","params":{' + named + "}}",
        '{"action":"read","params":{"q":"\\"action\\":\\"audit.shred\\"",' + named + "}}",
    ]
    for content in contents:
        covers: list[tuple[str, list[bytes]]] = []
        scan._shred_entry(content.encode(), covers)
        assert covers == [], content
    good = (
        '{"action":"audit.shred","outcome":"ok","params":{' + named + ',"order_reference":"MC-1"}}'
    )
    covers = []
    scan._shred_entry(good.encode(), covers)
    assert covers == [("MC-1", [bytes.fromhex("ab" * 32)])]


def test_a_shredding_entry_covers_across_chunks(tmp_path: Path) -> None:
    ex = build_export(300, [100, 256, 300], shredded={3, 150, 250})
    summary = run(tmp_path, ex)
    assert summary.shredded == 3
    assert summary.orders == ("MC-1",)


def test_partial_export_with_frontier(tmp_path: Path) -> None:
    ex = build_export(50, [21, 50], first=21)
    summary = run(tmp_path, ex)
    assert (summary.first_index, summary.size) == (21, 50)
    assert ex.lines[1].startswith("frontier ")
    frontier = ex.lines[1].split(" ")
    frontier[1] = flip_hex(frontier[1], 0)
    ex.lines[1] = " ".join(frontier)
    assert failure(tmp_path, ex).index == 21


def test_partial_export_needs_frontier(tmp_path: Path) -> None:
    ex = build_export(50, [21, 50], first=21)
    del ex.lines[1]
    assert "frontier" in str(failure(tmp_path, ex))


@pytest.mark.parametrize(
    ("edit", "index", "words"),
    [
        (lambda ls: ls.append("checkpoint AAAA"), 40, "after the end"),
        (lambda ls: ls.append("garbage"), 40, "after the end"),
        (lambda ls: ls.append("entry 40 a b c"), 40, "after the end"),
        (lambda ls: ls.__setitem__(-1, "end 39"), 40, "end line"),
        (lambda ls: ls.insert(-1, "garbage"), 40, "malformed line"),
        (lambda ls: ls.__setitem__(0, "openpars-audit-export/v2 0 x"), None, "header"),
        (lambda ls: ls.__setitem__(0, "openpars-audit-export/v1 0 "), None, "origin"),
        (lambda ls: ls.__setitem__(0, "openpars-audit-export/v1 x y"), None, "first index"),
    ],
)
def test_structural_errors(
    tmp_path: Path, good: Export, edit: Callable[[list[str]], None], index: int | None, words: str
) -> None:
    edit(good.lines)
    err = failure(tmp_path, good)
    assert err.index == index
    assert words in str(err)


def test_entries_after_the_last_checkpoint(tmp_path: Path) -> None:
    ex = build_export(40, [16, 32])
    err = failure(tmp_path, ex)
    assert err.index == 32
    assert "not covered" in str(err)


def test_malformed_entry_fields(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 3)
    parts = good.lines[pos].split(" ")
    good.lines[pos] = " ".join([parts[0], parts[1], parts[2][:-1], parts[3], parts[4]])
    err = failure(tmp_path, good)
    assert err.index == 3
    assert "malformed entry" in str(err)
    good.lines[pos] = " ".join([parts[0], parts[1], parts[2], parts[3][:-2], parts[4]])
    assert "salt is not 64 hex digits" in str(failure(tmp_path, good))
    good.lines[pos] = " ".join(["entri", *parts[1:]])
    assert "unknown line type" in str(failure(tmp_path, good))
    good.lines[pos] = " ".join(parts)
    shredded = entry_pos(good, 5)
    good.lines[shredded] = good.lines[shredded][:-2]
    err = failure(tmp_path, good)
    assert (err.index, "commitment is not 64 hex digits" in str(err)) == (5, True)


def test_non_numeric_index(tmp_path: Path, good: Export) -> None:
    pos = entry_pos(good, 3)
    good.lines[pos] = good.lines[pos].replace("entry 3 ", "entry three ")
    assert failure(tmp_path, good).index == 3


def test_larger_export(tmp_path: Path) -> None:
    ex = build_export(300, [100, 256, 300], shredded={99, 200})
    leaves = [e.leaf for e in ex.entries]
    summary = run(tmp_path, ex, trusted={150: mth(leaves[:150]), 300: mth(leaves)})
    assert (summary.size, summary.trusted_checked) == (300, 2)
    del ex.lines[entry_pos(ex, 255)]
    assert failure(tmp_path, ex).index == 255


def test_first_divergence_wins_whatever_the_workers(tmp_path: Path, good: Export) -> None:
    # A later bad entry must not be reported before an earlier bad checkpoint, even when a
    # worker scans the later chunk first.
    pos = entry_pos(good, 30)
    parts = good.lines[pos].split(" ")
    parts[3] = flip_hex(parts[3], 5)
    good.lines[pos] = " ".join(parts)
    forged = checkpoint_note(16, sha(b"lie"), good.log, good.witnesses)
    good.lines[checkpoint_pos(good, 0)] = "checkpoint " + b64(forged.encode())
    assert failure(tmp_path, good).index == 0
