"""Audited reads over HTTP on loopback: the real app under uvicorn, real HTTP clients (issue 12).

Two figures, SQLite and PostgreSQL side by side in one run; the last line of output is one JSON
object with every figure.

    .venv/bin/python bench/http_load.py [--quick] [--backend sqlite|postgresql|both] [--rounds N]

- concurrency (target 2): 16 and 64 client threads, each with its own keep-alive connection,
  send external person searches (an outside agency's reader, a purpose, a name prefix) for a
  fixed time (after a warm-up of a second, or half the time if shorter); requests per second
  and p50/p99 latency, audited against the same server with the audit append skipped. The skip
  is a monkeypatch inside the server process this script starts (`--serve ... --skip-audit`):
  no setting of openpars turns it on.
- external vs internal (target 4): one client, the same name searches as the outside agency's
  reader and as a police reader, interleaved; p50/p99 of each and their ratio.

The server is started as `openpars serve` starts it (`uvicorn.run(create_app(settings))`, one
process, uvicorn's defaults) in a child process, so the clients' CPU is not the server's GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import PG_URL, SCOPE, database, prepare_data
from search_data.agreement import PURPOSE, external_reader
from search_data.load import Loaded
from sqlalchemy import select
from sqlalchemy.orm import Session

from openpars.config import Settings
from openpars.db import make_engine, make_unpooled_engine
from openpars.identity.models import User, UserRole
from openpars.identity.principal import Principal
from openpars.identity.roles import Role
from openpars.identity.service import issue_token
from openpars.models import load_all_models

SEED = 20261205
# Outside readers in the agency: the per-user rate limit (at most 10,000 a minute) is checked
# for real, so the load is spread over several accounts of the same agency.
EXTERNAL_USERS = 16


# --- the server ------------------------------------------------------------------------------


def serve(url: str, port: int, key: Path, skip_audit: bool) -> None:
    """Run the app as `openpars serve` does; with `skip_audit`, reads append no entry."""
    import uvicorn

    from openpars.web.app import create_app

    if skip_audit:
        import openpars.access.service as access_service

        # The benchmark's baseline only: the read path's append becomes a no-op.
        access_service.append = lambda *args, **kwargs: None  # type: ignore[assignment]
    settings = Settings(database_url=url, log_key_path=key)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(url: str, key: Path, *, skip_audit: bool) -> Iterator[str]:
    """A child process serving the app; yields its base URL once /healthz answers."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", url, "--port", str(port), "--key", str(key)]
    child = subprocess.Popen([*command, *(["--skip-audit"] if skip_audit else [])])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=30)


# --- accounts --------------------------------------------------------------------------------


def tokens(url: str, data: Loaded) -> tuple[list[str], str]:
    """API tokens: one per outside reader of the benchmark agency, and the police reader's."""
    engine = make_engine(url)
    first = external_reader(engine, SCOPE)
    with Session(engine) as session:
        secrets = [_token(session, first)]
        for n in range(1, EXTERNAL_USERS):
            user = User(
                username=f"bench-federal-{n}",
                display_name=f"Bench Federal {n}",
                agency_id=first.agency_id,
            )
            session.add(user)
            session.flush()
            session.add(UserRole(user_id=user.id, role=Role.EXTERNAL_QUERY))
            session.flush()
            secrets.append(_token(session, _as_principal(first, user.id)))
        internal = _token(session, data.reader())
        session.commit()
    engine.dispose()
    return secrets, internal


def _as_principal(template: Principal, user_id: int) -> Principal:
    return Principal(
        user_id=user_id,
        username="",
        agency_id=template.agency_id,
        agency_kind=template.agency_kind,
        roles=template.roles,
        agency_path=template.agency_path,
    )


def _token(session: Session, who: Principal) -> str:
    existing = session.scalar(select(User).where(User.id == who.user_id))
    assert existing is not None
    return issue_token(
        session, actor=who, user_id=who.user_id, name="bench", lifetime=timedelta(days=1)
    )[1]


# --- the clients -----------------------------------------------------------------------------


@dataclass
class Load:
    """What a timed run measured."""

    latencies_ms: list[float]
    seconds: float
    failures: int

    def figures(self) -> dict[str, float]:
        """Requests per second, p50 and p99 in ms."""
        ordered = sorted(self.latencies_ms)
        return {
            "per_s": round(len(ordered) / self.seconds, 1),
            "p50_ms": round(_pct(ordered, 0.50), 2),
            "p99_ms": round(_pct(ordered, 0.99), 2),
            "requests": len(ordered),
        }


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _search(client: httpx2.Client, token: str, name: str) -> tuple[float, bool]:
    started = time.perf_counter()
    response = client.get(
        "/api/v1/persons",
        params={"name": name, "purpose": PURPOSE},
        headers={"authorization": f"Bearer {token}"},
    )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, response.status_code == 200


def concurrent(
    base: str, secrets: list[str], names: list[str], clients: int, seconds: float
) -> Load:
    """`clients` threads search for `seconds` after a warm-up; every reply in between timed."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop = threading.Event()
    measuring = threading.Event()

    def client(n: int) -> None:
        rng = random.Random(SEED + n)
        token = secrets[n % len(secrets)]
        mine: list[float] = []
        bad = 0
        with httpx2.Client(base_url=base, timeout=120) as http:
            start.wait()
            while not stop.is_set():
                elapsed, ok = _search(http, token, rng.choice(names))
                if measuring.is_set() and not stop.is_set():
                    mine.append(elapsed)
                    bad += not ok
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    time.sleep(min(1.0, seconds / 2))
    measuring.set()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    ended = time.perf_counter()
    for thread in threads:
        thread.join()
    return Load(latencies, ended - began, failures[0])


def single(base: str, external: str, internal: str, names: list[str]) -> dict[str, Any]:
    """One client, the same searches as the outside reader and as the police reader, alternating."""
    timed: dict[str, list[float]] = {"external": [], "internal": []}
    failures = 0
    with httpx2.Client(base_url=base, timeout=60) as http:
        for n, name in enumerate(names):
            order = ("external", "internal") if n % 2 else ("internal", "external")
            for who in order:
                elapsed, ok = _search(http, external if who == "external" else internal, name)
                timed[who].append(elapsed)
                failures += not ok
    result: dict[str, Any] = {"requests_each": len(names), "failures": failures}
    for who, samples in timed.items():
        warm = sorted(samples[len(samples) // 10 :])  # the first tenth warms the caches
        result[f"{who}_p50_ms"] = round(_pct(warm, 0.5), 2)
        result[f"{who}_p99_ms"] = round(_pct(warm, 0.99), 2)
    result["external_vs_internal_p50"] = round(
        result["external_p50_ms"] / result["internal_p50_ms"], 3
    )
    result["external_vs_internal_p99"] = round(
        result["external_p99_ms"] / result["internal_p99_ms"], 3
    )
    return result


# --- a backend -------------------------------------------------------------------------------


def commit_settings(url: str, commit_delay_us: int | None) -> dict[str, str]:
    """PostgreSQL: set commit_delay on the bench's own database if asked; what is in force."""
    if commit_delay_us is not None:
        admin = make_unpooled_engine(PG_URL)
        with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET commit_delay = {commit_delay_us}')
        admin.dispose()
    engine = make_engine(url)
    names = ("commit_delay", "commit_siblings", "synchronous_commit", "wal_sync_method")
    with engine.connect() as conn:
        settings = {n: str(conn.exec_driver_sql(f"SHOW {n}").scalar()) for n in names}
    engine.dispose()
    return settings


def run_backend(
    backend: str, persons: int, rounds: int, seconds: float, singles: int, delay: int | None
) -> Any:
    """Load the data, then the concurrency rounds (audited and skipped alternate) and singles."""
    with database(backend, persons, None) as (url, _kept), tempfile.TemporaryDirectory() as tmp:
        data, _load_s = prepare_data(url, persons)
        secrets, internal = tokens(url, data)
        rng = random.Random(SEED)
        names = [data.random_family_prefix(rng) for _ in range(2000)]
        key = Path(tmp) / "log.key"
        result: dict[str, Any] = {"url": url.split("://")[0], "rounds": []}
        if backend == "postgresql":
            result["server"] = commit_settings(url, delay)
        for n in range(rounds):
            measured: dict[str, Any] = {}
            # The last round ends on the audited server, which then serves the single client.
            for mode in ("skipped", "audited") if n == rounds - 1 else ("audited", "skipped"):
                with server(url, key, skip_audit=mode == "skipped") as base:
                    for clients in (16, 64):
                        run = concurrent(base, secrets, names, clients, seconds)
                        measured[f"{mode}_{clients}"] = run.figures() | {"failed": run.failures}
                        _progress(f"{backend} {mode} {clients}: {measured[f'{mode}_{clients}']}")
                    if mode == "audited" and n == rounds - 1:
                        result["single"] = single(base, secrets[0], internal, names[:singles])
                        _progress(f"{backend} single: {result['single']}")
            result["rounds"].append(measured)
    _summarise(result)
    return result


def _summarise(result: dict[str, Any]) -> None:
    """Per client count: the median round's figures and the audited/skipped throughput ratio."""
    for clients in (16, 64):
        ratios = sorted(
            r[f"audited_{clients}"]["per_s"] / max(r[f"skipped_{clients}"]["per_s"], 0.1)
            for r in result["rounds"]
        )
        result[f"audited_vs_skipped_{clients}"] = round(ratios[len(ratios) // 2], 3)
        result[f"audited_vs_skipped_{clients}_rounds"] = [round(x, 3) for x in ratios]
        for mode in ("audited", "skipped"):
            by_rate = sorted(
                (r[f"{mode}_{clients}"] for r in result["rounds"]), key=lambda f: f["per_s"]
            )
            result[f"{mode}_{clients}"] = by_rate[len(by_rate) // 2]
    del result["rounds"]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    """Parse the arguments; serve (child) or run the backends and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 persons, short runs")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--pg-commit-delay",
        type=int,
        default=None,
        help="commit_delay (µs) for the bench's own PostgreSQL database (server default: 0)",
    )
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-audit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    load_all_models()
    if args.serve:
        serve(args.serve, args.port, args.key, args.skip_audit)
        return
    persons, rounds, seconds, singles = (
        (2_000, 1, 1.5, 60) if args.quick else (50_000, 3, 8.0, 1000)
    )
    rounds = args.rounds or rounds
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    figures: dict[str, Any] = {
        "persons": persons,
        "seconds_per_figure": seconds,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for backend in backends:
        figures[backend] = run_backend(
            backend, persons, rounds, seconds, singles, args.pg_commit_delay
        )
    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
