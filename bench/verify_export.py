"""Benchmark the independent verifier on a real log's export, and server-side proof generation.

1. Fills a real log (a SQLite file in a temp dir, `synchronous=FULL`) through the real append
   path (`audit.service.append_many`, 1,000 entries per transaction), integrates and signs a
   checkpoint every `--every` entries as the publisher does (`checkpoints.publish`), and has a
   witness registered by a new site's first board (`openpars board init --witness`) cosign
   each through the path `POST /audit/checkpoints/{size}/cosignatures` uses
   (`witness.submit_cosignature`).
2. Writes the export with `openpars audit export --out` (a subprocess: the real command).
3. Times `python -m openpars_verify export` on it in a subprocess and reads its peak RSS with
   getrusage(RUSAGE_CHILDREN) inside a tiny stdlib-only launcher process. (A child started by
   vfork inherits its parent's RSS high-water mark at exec; measuring from a small launcher keeps
   this bench's own memory out of the figure.)
4. Proof generation, wall and CPU time side by side: from the database-backed node store (what
   `GET /audit/proof/...` serves: `log.inclusion_proof` in a session), and from an in-memory dict
   node store built through `openpars.audit.merkle.append_leaf` (the algorithm alone), beside
   the time of one SHA-256 over 64 bytes.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
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
BATCH = 1_000


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


def _events(count: int, offset: int) -> list[Any]:
    """Realistic external-search entries (no subjects: this log has no records to name)."""
    from openpars.audit.events import AuditEvent, AuditKind

    return [
        AuditEvent(
            kind=AuditKind.SEARCH,
            action="external.search",
            user_id=None,
            username="fbi.agent",
            source_ip="10.20.30.40",
            params={
                "purpose": "fugitive apprehension",
                "case_reference": f"FBI-PH-{offset + i}",
                "query": {"last_name": "SMITH", "dob_year": 1990},
                "decision": "permit",
            },
        )
        for i in range(count)
    ]


def _cli(env: dict[str, str], *args: str) -> str:
    """Run an `openpars` command against the bench's log; its standard output."""
    command = [str(Path(sys.executable).with_name("openpars")), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"openpars {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def fill(folder: Path, entries: int, every: int) -> tuple[dict[str, str], str, int]:
    """A real log of `entries` appended entries, checkpointed and cosigned every `every`.

    Returns the environment of the `openpars` commands, the witness key, the signed size.
    """
    from openpars.audit import checkpoints, log, notes, service, witness
    from openpars.config import Settings
    from openpars.db import Base, Database, make_engine
    from openpars.models import load_all_models

    load_all_models()
    url = f"sqlite:///{folder / 'log.db'}"
    env = os.environ | {
        "OPENPARS_DATABASE_URL": url,
        "OPENPARS_LOG_KEY_PATH": str(folder / "log.key"),
        "OPENPARS_LOG_ORIGIN": ORIGIN,
    }
    settings = Settings(database_url=url, log_key_path=folder / "log.key", log_origin=ORIGIN)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    db = Database(engine)
    w_skey, w_vkey = notes.generate_keys("bench.witness", algorithm=notes.ALG_COSIGNATURE_V1)
    # Witnesses are added by the board (or, once, with the first board): a stakeholder agency
    # makes the board, and its bootstrap registers the witness, as a new site does.
    created = _cli(env, "agency", "create", "Bench District Attorney", "--kind", "da")
    agency_id = created.split(":", 1)[0].rsplit(" ", 1)[-1]
    _cli(env, "board", "init", "--member", agency_id, "--quorum", "1", "--witness", w_vkey)
    cosigner = notes.parse_signer_key(w_skey)
    done = 0
    while done < entries:
        count = min(BATCH, entries - done)
        with db.session() as session:
            service.append_many(session, _events(count, done))
        done += count
        if done % every == 0 or done == entries:
            log.integrate_all(db)
            with db.session() as session:
                published = checkpoints.publish(session, settings=settings)
                assert published is not None
                note = notes.add_cosignature(published.note, cosigner, int(time.time()))
                witness.submit_cosignature(session, size=published.size, cosignature=note, quorum=1)
                size = published.size
    engine.dispose()
    return env, w_vkey, size


def db_proof_latency(env: dict[str, str], size: int, samples: int) -> dict[str, float]:
    """Inclusion and consistency proofs as the API serves them: `log` over the database."""
    from openpars.audit import log
    from openpars.db import Database, make_engine

    db = Database(make_engine(env["OPENPARS_DATABASE_URL"]))
    rng = random.Random(2)
    cpu: dict[str, list[int]] = {"inclusion": [], "consistency": []}
    wall: dict[str, list[int]] = {"inclusion": [], "consistency": []}
    with db.session() as session:
        for _ in range(samples):
            index, old = rng.randrange(size), rng.randrange(1, size + 1)
            started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
            log.inclusion_proof(session, index=index, size=size)
            cpu["inclusion"].append(time.thread_time_ns() - started_cpu)
            wall["inclusion"].append(time.perf_counter_ns() - started)
            started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
            log.consistency_proof(session, first=old, second=size)
            cpu["consistency"].append(time.thread_time_ns() - started_cpu)
            wall["consistency"].append(time.perf_counter_ns() - started)
    db.dispose()
    return _percentiles(cpu, wall)


def _percentiles(cpu: dict[str, list[int]], wall: dict[str, list[int]]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for kind in cpu:
        figures[f"{kind}_p50_ms"] = statistics.median(cpu[kind]) / 1e6
        figures[f"{kind}_p99_ms"] = _p99(cpu[kind]) / 1e6
        figures[f"{kind}_wall_p50_ms"] = statistics.median(wall[kind]) / 1e6
        figures[f"{kind}_wall_p99_ms"] = _p99(wall[kind]) / 1e6
    return figures


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
    return root, _percentiles(cpu, wall)


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
    """Fill, export, verify, measure; print a JSON summary as the last line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--launch":
        _launcher()
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000, help="checkpoint spacing")
    parser.add_argument("--samples", type=int, default=2_000, help="proofs to time")
    args = parser.parse_args()
    entries, every = (10_000, 2_500) if args.quick else (args.entries, args.every)
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="openpars-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        env, w_vkey, size = fill(folder, entries, every)
        fill_seconds = time.perf_counter() - started
        path = folder / "audit.export"
        started = time.perf_counter()
        _cli(env, "audit", "export", "--out", str(path))
        export_seconds = time.perf_counter() - started
        log_vkey = _cli(env, "audit", "key").strip()
        size_mb = path.stat().st_size / 1e6
        print(f"filled a log of {size:,} entries in {fill_seconds:.1f} s; {size_mb:,.0f} MB")
        report = verify(path, log_vkey, w_vkey)
        print(f"verifier: {report['output']}")
        if report["returncode"] != 0:
            raise SystemExit("the verifier rejected the export of a real log")
        seconds, cpu = float(report["seconds"]), float(report["cpu_seconds"])
        rss_mb = int(report["peak_rss_kib"]) / 1024
        tree_mb = int(report["tree_peak_rss_kib"]) / 1024
        per_entry = seconds / size * 1e6
        print(
            f"verify: {seconds:.1f} s wall ({cpu:.1f} s CPU), {per_entry:.2f} us/entry, "
            f"peak RSS {rss_mb:.0f} MB per process, {tree_mb:.0f} MB summed over workers"
        )
        from_db = db_proof_latency(env, size, args.samples)
        _, in_memory = proof_latency(path, size, args.samples)
    sha_ms = sha_baseline_ms()
    for label, figures in (("database", from_db), ("in memory", in_memory)):
        print(
            f"proofs from {label}: inclusion p50/p99 {figures['inclusion_wall_p50_ms']:.3f}/"
            f"{figures['inclusion_wall_p99_ms']:.3f} ms wall, "
            f"{figures['inclusion_p50_ms']:.3f}/{figures['inclusion_p99_ms']:.3f} ms CPU"
        )
    result: dict[str, Any] = {
        "entries": size,
        "checkpoint_every": every,
        "export_mb": round(size_mb, 1),
        "fill_seconds": round(fill_seconds, 1),
        "export_seconds": round(export_seconds, 1),
        "verify_seconds": round(seconds, 2),
        "verify_cpu_seconds": round(cpu, 2),
        "verify_us_per_entry": round(per_entry, 2),
        "verify_peak_rss_mb": round(rss_mb),
        "verify_tree_rss_mb": round(tree_mb),
        "sha256_64b_us": round(sha_ms * 1e3, 3),
        "load_average_1m": round(load_average, 2),
        "load_average_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    result |= {f"db_{key}": round(value, 4) for key, value in from_db.items()}
    result |= {f"memory_{key}": round(value, 4) for key, value in in_memory.items()}
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
