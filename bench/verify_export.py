"""Benchmark the independent verifier on a large export, and server-side proof generation.

1. Generates (in a temp dir) an `openpars-audit-export/v1` file of N entries with a checkpoint
   every 100,000 entries, signed by a throwaway log key and cosigned by a throwaway witness,
   using the server's `openpars.audit.notes` (so the verifier is checked against the server).
2. Times `python -m openpars_verify export` on it in a subprocess and reads its peak RSS with
   getrusage(RUSAGE_CHILDREN) inside a tiny stdlib-only launcher process. (A child started by
   vfork inherits its parent's RSS high-water mark at exec; measuring from a small launcher keeps
   this bench's own memory out of the figure.)
3. Builds an in-memory dict node store through `openpars.audit.merkle.append_leaf` and measures
   inclusion and consistency proof generation latency at that size, side by side with the time
   of one SHA-256 over 64 bytes.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ORIGIN = "bench.openpars.example/audit"
BATCH = 10_000


def _tree_rss_kib(pid: int) -> int:
    """Return the summed resident set of a process and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # it exited between two reads
        total += next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
        stack.extend(int(child) for child in children)
    return total


def _launcher() -> None:
    """Run the verifier as this process's only child; print its wall time and peak RSS."""
    import resource

    started = time.perf_counter()
    proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # ru_maxrss is the peak of the largest single process; with worker processes the sum over
    # the process tree matters too, so it is sampled every 50 ms (shared pages count twice).
    tree_peak = 0
    while proc.poll() is None:
        tree_peak = max(tree_peak, _tree_rss_kib(proc.pid))
        time.sleep(0.05)
    output = proc.stdout.read().decode() if proc.stdout else ""
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report: dict[str, object] = {
        "seconds": seconds,
        # CPU time is reported too: on a shared machine wall time also measures the neighbours.
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_kib": usage.ru_maxrss,
        "tree_peak_rss_kib": tree_peak,
        "returncode": proc.returncode,
        "output": output.strip(),
    }
    print(json.dumps(report))


def generate(path: Path, entries: int, every: int, content_bytes: int) -> tuple[str, str, bytes]:
    """Write the export; return (log vkey, witness vkey, final root)."""
    from openpars.audit import notes

    log_skey, log_vkey = notes.generate_keys(ORIGIN)
    w_skey, w_vkey = notes.generate_keys("bench.witness", algorithm=notes.ALG_COSIGNATURE_V1)
    log, witness = notes.parse_signer_key(log_skey), notes.parse_signer_key(w_skey)
    sha256 = hashlib.sha256
    frontier: list[bytes] = []
    size = 0
    next_checkpoint = min(every, entries)
    # Same-length contents let one base64 call (and one hex call for the salts) cover a whole
    # batch; each entry then takes slices.
    width = (content_bytes + 2) // 3 * 4
    with path.open("wb", buffering=1 << 22) as out:
        out.write(f"openpars-audit-export/v1 0 {ORIGIN}\n".encode())
        while size < entries:
            count = min(BATCH, entries - size)
            salts = os.urandom(32 * count)
            salts_hex = salts.hex().encode()
            contents = os.urandom(content_bytes * count)
            encoded = binascii.b2a_base64(contents, newline=False)
            lines = []
            for i in range(count):
                content = contents[content_bytes * i : content_bytes * (i + 1)]
                commitment = sha256(salts[32 * i : 32 * i + 32] + content).digest()
                body = (
                    encoded[width * i : width * (i + 1)]
                    if content_bytes % 3 == 0
                    else base64.b64encode(content)
                )
                salt_hex = salts_hex[64 * i : 64 * i + 64]
                lines.append(
                    b"entry %d %s %s %s\n" % (size, commitment.hex().encode(), salt_hex, body)
                )
                leaf = sha256(b"\x00" + commitment).digest()
                m = size
                while m & 1:
                    leaf = sha256(b"\x01" + frontier.pop() + leaf).digest()
                    m >>= 1
                frontier.append(leaf)
                size += 1
                if size == next_checkpoint:
                    lines.append(_checkpoint_line(notes, log, witness, size, _root(frontier)))
                    next_checkpoint = min(size + every, entries)
            out.write(b"".join(lines))
        out.write(b"end %d\n" % size)
    return log_vkey, w_vkey, _root(frontier)


def _checkpoint_line(notes: Any, log: Any, witness: Any, size: int, root: bytes) -> bytes:
    """Sign a checkpoint with the server's note code and cosign it as the witness."""
    body = notes.Checkpoint(ORIGIN, size, root).body()
    note = notes.add_cosignature(notes.sign_note(body, [log]), witness, int(time.time()))
    return b"checkpoint " + base64.b64encode(note.encode()) + b"\n"


def _root(frontier: list[bytes]) -> bytes:
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = hashlib.sha256(b"\x01" + left + root).digest()
    return root


def verify(path: Path, log_vkey: str, w_vkey: str) -> dict[str, Any]:
    """Run the verifier through the launcher; return its report."""
    command = [sys.executable, "-m", "openpars_verify", "export", str(path)]
    command += ["--log-key", log_vkey, "--witness-key", w_vkey, "--quorum", "1"]
    launched = subprocess.run(
        [sys.executable, __file__, "--launch", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(launched.stdout.strip().splitlines()[-1])
    return report


def proof_latency(path: Path, entries: int, samples: int) -> tuple[bytes, dict[str, float]]:
    """Build a dict node store from the export's commitments; time proof generation."""
    from openpars.audit import merkle

    class DictStore:
        """Complete subtree hashes in a dict keyed by index * 64 + level (no tuple per key)."""

        def __init__(self) -> None:
            self.nodes: dict[int, bytes] = {}

        def node(self, level: int, index: int) -> bytes:
            return self.nodes[index << 6 | level]

    store = DictStore()
    nodes = store.nodes
    frontier = merkle.EMPTY_FRONTIER
    # Millions of long-lived objects: keep the cyclic GC from rescanning them while building,
    # and freeze them afterwards so no collection pause lands inside a timed proof.
    gc.disable()
    with path.open("rb") as f:
        for line in f:
            if line.startswith(b"entry "):
                commitment = bytes.fromhex(line.split(b" ", 3)[2].decode())
                appended = merkle.append_leaf(frontier, merkle.leaf_hash(commitment))
                frontier = appended.frontier
                for level, index, value in appended.nodes:
                    nodes[index << 6 | level] = value
    gc.enable()
    gc.freeze()
    root = merkle.root_from_frontier(frontier)
    rng = random.Random(1)
    # Each proof is timed twice over: thread CPU time, which excludes the time this process
    # waits for a core (other jobs on a shared machine), and wall time, which does not.
    cpu: dict[str, list[int]] = {"inclusion": [], "consistency": []}
    wall: dict[str, list[int]] = {"inclusion": [], "consistency": []}
    for _ in range(samples):
        index, old = rng.randrange(entries), rng.randrange(1, entries + 1)
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        proof = merkle.inclusion_proof(store, index, entries)
        cpu["inclusion"].append(time.thread_time_ns() - started_cpu)
        wall["inclusion"].append(time.perf_counter_ns() - started)
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        merkle.consistency_proof(store, old, entries)
        cpu["consistency"].append(time.thread_time_ns() - started_cpu)
        wall["consistency"].append(time.perf_counter_ns() - started)
        merkle.verify_inclusion(store.node(0, index), index, entries, proof, root)
    figures = {f"{kind}_p99_ms": _p99(values) / 1e6 for kind, values in cpu.items()}
    figures |= {f"{kind}_wall_p99_ms": _p99(values) / 1e6 for kind, values in wall.items()}
    return root, figures


def _p99(values: list[int]) -> float:
    return statistics.quantiles(values, n=100)[98]


def sha_baseline_ms() -> float:
    """Return the thread CPU time of one SHA-256 over 64 bytes, averaged over a million."""
    data, sha256, calls = bytes(64), hashlib.sha256, 1_000_000
    started = time.thread_time()
    for _ in range(calls):
        sha256(data).digest()
    return (time.thread_time() - started) / calls * 1e3


def main() -> None:
    """Generate, verify, measure; print a JSON summary as the last line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--launch":
        _launcher()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 entries")
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--every", type=int, default=100_000, help="checkpoint spacing")
    parser.add_argument("--content-bytes", type=int, default=96)
    parser.add_argument("--samples", type=int, default=2_000, help="proofs to time")
    args = parser.parse_args()
    entries = 200_000 if args.quick else args.entries
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        path = Path(tmp) / "audit.export"
        started = time.perf_counter()
        log_vkey, w_vkey, root = generate(path, entries, args.every, args.content_bytes)
        generate_seconds = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        print(f"generated {entries:,} entries ({size_mb:,.0f} MB) in {generate_seconds:.1f} s")
        report = verify(path, log_vkey, w_vkey)
        print(f"verifier: {report['output']}")
        if report["returncode"] != 0:
            raise SystemExit("the verifier rejected a valid export")
        seconds, cpu = float(report["seconds"]), float(report["cpu_seconds"])
        rss_mb = int(report["peak_rss_kib"]) / 1024
        tree_mb = int(report["tree_peak_rss_kib"]) / 1024
        per_entry = seconds / entries * 1e6
        print(
            f"verify: {seconds:.1f} s wall ({cpu:.1f} s CPU), {per_entry:.2f} us/entry, "
            f"peak RSS {rss_mb:.0f} MB per process, {tree_mb:.0f} MB summed over workers"
        )
        store_root, latency = proof_latency(path, entries, args.samples)
    if store_root != root:
        raise SystemExit("the node store's root differs from the generator's")
    sha_ms = sha_baseline_ms()
    p99, c99 = latency["inclusion_p99_ms"], latency["consistency_p99_ms"]
    print(
        f"proof generation p99 (CPU): inclusion {p99:.4f} ms, consistency {c99:.4f} ms "
        f"(wall {latency['inclusion_wall_p99_ms']:.4f} / {latency['consistency_wall_p99_ms']:.4f}"
        f" ms); one SHA-256(64 B) = {sha_ms * 1e3:.3f} us; inclusion p99 = "
        f"{p99 / sha_ms:.0f} x SHA-256"
    )
    figures = {
        "entries": entries,
        "export_mb": round(size_mb),
        "generate_seconds": round(generate_seconds, 1),
        "verify_seconds": round(seconds, 1),
        "verify_cpu_seconds": round(cpu, 1),
        "verify_us_per_entry": round(per_entry, 2),
        "verify_peak_rss_mb": round(rss_mb),
        "verify_tree_rss_mb": round(tree_mb),
        "proof_p99_ms": round(p99, 4),
        "consistency_proof_p99_ms": round(c99, 4),
        "proof_wall_p99_ms": round(latency["inclusion_wall_p99_ms"], 4),
        "sha256_64b_us": round(sha_ms * 1e3, 3),
        "proof_p99_over_sha256": round(p99 / sha_ms),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
