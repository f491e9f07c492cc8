"""The `openpars-verify` command line.

Exit status: 0 when everything verified, 1 when something failed verification (one line on
stderr saying what and where), 2 for usage errors (bad arguments, keys or unreadable files).
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from openpars_verify import export, receipt, tlog, votes, watch, witness
from openpars_verify import note as notes


class UsageError(Exception):
    """Bad input from the caller rather than a verification failure."""


class Unwitnessed(Exception):
    """Everything verified, but only against the log's own key: no witness vouched for it."""


FAILURES = (
    export.ExportFailure,
    tlog.ProofFailure,
    notes.NoteFailure,
    witness.WitnessRefusal,
    votes.VoteFailure,
    receipt.ReceiptFailure,
    Unwitnessed,
)

UNWITNESSED = (
    "the log is NOT WITNESSED: no witness key was given (or --quorum 0), so this only shows "
    "that the holder of the log key signed it, and whoever holds that key can rewrite and "
    "re-sign the whole log. Name the stakeholders' witness keys with --witness-key, or pass "
    "--allow-unwitnessed to accept a log no one else vouched for"
)


def _witnessed(args: argparse.Namespace, quorum: int, ok: str) -> str:
    """The OK line, or Unwitnessed when no witness quorum was asked for and none allowed."""
    if quorum > 0:
        return ok
    if not args.allow_unwitnessed:
        raise Unwitnessed(f"{ok.removeprefix('OK ')}; but {UNWITNESSED}")
    return f"{ok}; NOT WITNESSED (--allow-unwitnessed): only the log key vouches for it"


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _public_key(vkey: str, want: int, role: str) -> notes.PublicKey:
    try:
        key = notes.parse_public_key(vkey)
    except notes.NoteFailure as exc:
        raise UsageError(f"{role} key: {exc}") from None
    if key.key_type != want:
        raise UsageError(f"{role} key {key.name} has type 0x{key.key_type:02x}, want 0x{want:02x}")
    return key


def _trust(args: argparse.Namespace) -> tuple[notes.PublicKey, list[notes.PublicKey], int]:
    log_key = _public_key(args.log_key, notes.NOTE_KEY, "log")
    witnesses = [_public_key(k, notes.COSIGNER_KEY, "witness") for k in args.witness_key]
    # With witnesses named but no quorum given, one cosignature is the least that means anything.
    quorum = args.quorum if args.quorum is not None else min(1, len(witnesses))
    if not 0 <= quorum <= len(witnesses):
        raise UsageError(f"quorum {quorum} needs that many --witness-key (have {len(witnesses)})")
    return log_key, witnesses, quorum


def _hash(text: str, what: str) -> bytes:
    """Decode a 32-byte hash written as 64 hex digits or as base64."""
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else notes.b64decode(text, what)
    except (ValueError, notes.NoteFailure):
        raise tlog.ProofFailure(f"{what} is neither 64 hex digits nor base64") from None
    if len(raw) != tlog.HASH_SIZE:
        raise tlog.ProofFailure(f"{what} is {len(raw)} bytes, want {tlog.HASH_SIZE}")
    return raw


def read_proof(path: str) -> list[bytes]:
    """Read a proof file: one hash per line, or a JSON list; hex or base64 hashes."""
    text = _read(path).decode("utf-8", "replace").strip()
    items: object = text.split()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"proof file {path} is not valid JSON: {exc.msg}") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UsageError(f"proof file {path} must be a list of hash strings")
    return [_hash(item, f"proof[{i}]") for i, item in enumerate(items)]


def _checkpoint(args: argparse.Namespace) -> str:
    log_key, witnesses, quorum = _trust(args)
    _, cp, count = notes.open_checkpoint(_read(args.note), log_key, witnesses, quorum)
    root = binascii.b2a_base64(cp.root, newline=False).decode()
    ok = f"OK checkpoint {cp.origin} size {cp.size} root {root}; {count} witness cosignatures"
    return _witnessed(args, quorum, ok)


def _inclusion(args: argparse.Namespace) -> str:
    if args.commitment is not None:
        leaf = tlog.leaf_hash(_hash(args.commitment, "--commitment"))
    else:
        leaf = _hash(args.leaf_hash, "--leaf-hash")
    root = _hash(args.root, "--root")
    try:
        tlog.verify_inclusion(leaf, args.index, args.size, read_proof(args.proof), root)
    except tlog.ProofFailure as exc:
        raise tlog.ProofFailure(
            f"inclusion of index {args.index} in size {args.size}: {exc}"
        ) from None
    return f"OK inclusion of index {args.index} in tree of size {args.size}"


def _consistency(args: argparse.Namespace) -> str:
    old, new = _hash(args.old_root, "--old-root"), _hash(args.new_root, "--new-root")
    try:
        tlog.verify_consistency(args.old_size, args.new_size, read_proof(args.proof), old, new)
    except tlog.ProofFailure as exc:
        raise tlog.ProofFailure(f"consistency {args.old_size} -> {args.new_size}: {exc}") from None
    return f"OK consistency from size {args.old_size} to {args.new_size}"


def _export(args: argparse.Namespace) -> str:
    log_key, witnesses, quorum = _trust(args)
    trusted: dict[int, bytes] = {}
    for path in args.checkpoint:
        try:
            _, cp, _ = notes.open_checkpoint(_read(path), log_key, witnesses, quorum)
        except notes.NoteFailure as exc:
            raise notes.NoteFailure(f"trusted checkpoint {path}: {exc}") from None
        if trusted.setdefault(cp.size, cp.root) != cp.root:
            raise export.ExportFailure(
                cp.size, f"fork: trusted checkpoints of size {cp.size} differ"
            )
    jobs = args.jobs if args.jobs is not None else min(4, os.cpu_count() or 1)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    try:
        summary = export.verify_export(
            Path(args.file), log_key, witnesses=witnesses, quorum=quorum, trusted=trusted, jobs=jobs
        )
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    root = binascii.b2a_base64(summary.root, newline=False).decode()
    ok = (
        f"OK export {summary.origin}: entries [{summary.first_index}, {summary.size}), "
        f"{summary.checkpoints} checkpoints, {summary.shredded} shredded, "
        f"{summary.trusted_checked} trusted checkpoints matched; root {root}"
        + (f"; shredded under orders {', '.join(summary.orders)}" if summary.orders else "")
    )
    if quorum > 0:
        ok += (
            f"; witnessed by {quorum} of {len(witnesses)} witnesses up to size {summary.witnessed}"
        )
    return _witnessed(args, quorum, ok)


def _receipt(args: argparse.Namespace) -> str:
    log_key, witnesses, quorum = _trust(args)
    verified = receipt.verify_receipt(_read(args.file), log_key, witnesses, quorum)
    # The witness verdict first: an unwitnessed receipt fails before anything is printed.
    ok = _witnessed(args, quorum, receipt.ok_line(verified))
    return f"{receipt.statement(verified)}\n{ok}"


def _json(path: str) -> object:
    try:
        return json.loads(_read(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not JSON ({exc})") from None


def _votes(args: argparse.Namespace) -> str:
    pinned: dict[str, votes.Pinned] = {}
    for path in args.stakeholder_keys:
        try:
            pinned |= votes.load_keyring(_json(path))
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from None
    return votes.verify_votes(_json(args.export), pinned)


def _signer(path: str, name: str | None) -> notes.PrivateKey:
    try:
        signer = notes.parse_private_key(_read(path).decode("utf-8", "replace"))
    except notes.NoteFailure as exc:
        raise UsageError(f"witness key file: {exc}") from None
    if name is not None and signer.name != name:
        raise UsageError(f"witness key is for {signer.name!r}, not {name!r}")
    return signer


def _witness(args: argparse.Namespace) -> str:
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("state", "log_key", "witness_name", "witness_key_file", "checkpoint", "proof")
        if getattr(args, name) is None
    ]
    if missing:
        raise UsageError(
            f"witness needs {', '.join(missing)} (or 'witness run' to keep witnessing a server)"
        )
    log_key = _public_key(args.log_key, notes.NOTE_KEY, "log")
    signer = _signer(args.witness_key_file, args.witness_name)
    line = witness.cosign(
        Path(args.state),
        log_key,
        signer,
        _read(args.checkpoint),
        read_proof(args.proof),
        int(time.time()),
    )
    return line.rstrip("\n")


def _log_line(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} openpars-verify witness: {message}", file=sys.stderr, flush=True)


def _witness_run(args: argparse.Namespace) -> int:
    """Run the witness loop; SIGTERM and SIGINT end it after the current round."""
    if args.interval <= 0 or args.max_backoff < args.interval:
        raise UsageError("--interval must be positive and --max-backoff at least --interval")
    signer = _signer(args.witness_key_file, None)
    if signer.key_type != notes.COSIGNER_KEY:
        raise UsageError("the witness key must be a cosigner key (keygen --cosigner)")
    watcher = watch.Watch(
        server=args.server,
        log_key=_public_key(args.log_key, notes.NOTE_KEY, "log"),
        signer=signer,
        state_dir=Path(args.state_dir),
        interval=args.interval,
        max_backoff=args.max_backoff,
        log=_log_line,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: watcher.stop.set())
    _log_line(
        f"witnessing {args.server} as {watcher.signer.name} every {args.interval:g}s "
        f"(state in {args.state_dir})"
    )
    return watch.run(watcher, once=args.once)


def _keygen(args: argparse.Namespace) -> str:
    try:
        skey, vkey = notes.generate(args.name, notes.COSIGNER_KEY if args.cosigner else 1)
    except notes.NoteFailure as exc:
        raise UsageError(str(exc)) from None
    return f"{skey}\n{vkey}"


def _add_trust_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-key", required=True, metavar="VKEY", help="the log's verifier key")
    p.add_argument(
        "--witness-key", action="append", default=[], metavar="VKEY", help="a trusted witness"
    )
    p.add_argument("--quorum", type=int, help="distinct witnesses required (default 1 if any)")
    p.add_argument(
        "--allow-unwitnessed",
        action="store_true",
        help="accept a log no witness cosigned (exit 0); without it such a log exits 1",
    )


def _add_witness_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="poll a server, cosign each checkpoint that extends the last one, submit it",
        description="A long-running witness: every --interval seconds fetch the newest "
        "checkpoint and the consistency proof from the last cosigned one, verify, cosign, "
        "submit. Problems are retried with capped, jittered exponential back-off; a fork or "
        "rollback is refused for good (exit 1).",
    )
    p.add_argument("--server", required=True, metavar="URL", help="the site, e.g. https://x")
    p.add_argument("--log-key", required=True, metavar="VKEY", help="the log's pinned key")
    p.add_argument("--witness-key-file", required=True, metavar="PRIV", help="this witness")
    p.add_argument("--state-dir", required=True, metavar="DIR", help="kept across restarts")
    p.add_argument("--interval", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--max-backoff", type=float, default=900.0, metavar="SECONDS")
    p.add_argument("--once", action="store_true", help="one round, then exit (cron, tests)")
    p.set_defaults(run=_witness_run)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openpars-verify", description="Verify an openpars audit log independently."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("checkpoint", help="verify a signed, cosigned checkpoint")
    p.add_argument("note", metavar="NOTE_FILE")
    _add_trust_options(p)
    p.set_defaults(run=_checkpoint)

    p = sub.add_parser("inclusion", help="verify an inclusion proof")
    leaf = p.add_mutually_exclusive_group(required=True)
    leaf.add_argument("--leaf-hash", metavar="HEX", help="SHA-256(0x00 || commitment)")
    leaf.add_argument("--commitment", metavar="HEX", help="the entry's commitment")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--root", required=True, metavar="B64")
    p.add_argument("--proof", required=True, metavar="FILE")
    p.set_defaults(run=_inclusion)

    p = sub.add_parser("consistency", help="verify a consistency proof")
    p.add_argument("--old-size", type=int, required=True)
    p.add_argument("--old-root", required=True, metavar="B64")
    p.add_argument("--new-size", type=int, required=True)
    p.add_argument("--new-root", required=True, metavar="B64")
    p.add_argument("--proof", required=True, metavar="FILE")
    p.set_defaults(run=_consistency)

    p = sub.add_parser("export", help="verify a whole exported log")
    p.add_argument("file", metavar="FILE")
    _add_trust_options(p)
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NOTE_FILE",
        help="a checkpoint obtained elsewhere that the export must contain (catches rollback)",
    )
    p.add_argument(
        "--jobs", type=int, help="worker processes for the per-entry checks (default: CPUs, max 4)"
    )
    p.set_defaults(run=_export)

    p = sub.add_parser("receipt", help="verify an audit entry's receipt (openpars-receipt/v1)")
    p.add_argument("file", metavar="FILE")
    _add_trust_options(p)
    p.set_defaults(run=_receipt)

    p = sub.add_parser(
        "witness",
        help="cosign a checkpoint that extends the last one seen ('witness run': keep doing it)",
    )
    p.add_argument("--state", metavar="DIR")
    p.add_argument("--log-key", metavar="VKEY")
    p.add_argument("--witness-name", metavar="NAME")
    p.add_argument("--witness-key-file", metavar="PRIV")
    p.add_argument("--checkpoint", metavar="NOTE_FILE")
    p.add_argument("--proof", metavar="FILE")
    p.set_defaults(run=_witness)
    _add_witness_run(p.add_subparsers(dest="witness_command"))

    p = sub.add_parser("votes", help="verify a vote export against pinned stakeholder keys")
    p.add_argument("--export", required=True, metavar="FILE", help="from 'openpars vote export'")
    p.add_argument(
        "--stakeholder-keys",
        action="append",
        required=True,
        metavar="FILE",
        help="a stakeholder's published keys ('openpars keys publish'); once per stakeholder",
    )
    p.set_defaults(run=_votes)

    p = sub.add_parser("keygen", help="print a new signer key and verifier key")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--cosigner", action="store_true", help="a witness key (type 0x04)")
    p.set_defaults(run=_keygen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], str | int] = args.run
    try:
        result = run(args)
        if isinstance(result, int):
            return result
        print(result)
    except FAILURES as exc:
        print(f"openpars-verify: FAIL: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"openpars-verify: error: {exc}", file=sys.stderr)
        return 2
    return 0
