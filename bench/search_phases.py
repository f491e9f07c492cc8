"""Where the whole search call's time goes, phase by phase, against the floor (issue 12 target 3).

The same data, callers and variants as ``bench/search.py``'s ``issue12_whole_call`` (the bare
search plus the smallest durable write, the internal and the external service call), run
interleaved; every call is timed as a whole and, inside it, by the functions it spends its
time in (thread CPU and wall, each function's own time: what its timed callees took is
subtracted). The last line of output is one JSON object.

    .venv/bin/python bench/search_phases.py [--backend sqlite|postgresql] [--rounds N]
        [--quick] [--data-dir D]

The same calls run untimed first (``untimed_*``: CPU and wall p50 and mean). A timed function
costs the timers themselves (four clock reads and a call, 3-5 us of CPU a phase):
``timer_cost_cpu_us`` is the timed calls' mean CPU less the untimed calls'.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from functools import partial, wraps
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search
from search import (
    PURPOSE,
    _pct,
    bare,
    database,
    external_compiler,
    full_service,
    prepare_data,
)
from search_data.agreement import SCOPE, external_reader
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from openpars.access import decision, enforcement, service, shaping
from openpars.access import repository as repo
from openpars.access.schemas import ReadContext
from openpars.audit import repository as audit_repo
from openpars.audit import service as audit_service
from openpars.db import Database, make_engine
from openpars.models import load_all_models

# (module, attribute, phase): every place the call looks the function up.
TIMED: list[tuple[Any, str, str]] = [
    (enforcement, "decide_sending", "decide: other"),
    (service, "decide_sending", "decide: other"),
    (decision, "send_claims_with", "decide: send rate claim (+lock, generation)"),
    (enforcement, "send_decision_reads", "decide: send rate claim (+lock, generation)"),
    (enforcement, "send_grant_reads", "decide: send in-force lookup"),
    (enforcement, "grant_in_force", "decide: read grant (sync)"),
    (enforcement, "_compiled", "decide: compiled policy"),
    (enforcement, "check_purpose", "decide: purpose"),
    (enforcement, "settle", "decide: settle rate claims"),
    (repo, "send_first_pages", "search: send first page (+set check)"),
    (service, "check_person_search", "search: criteria"),
    (repo, "search_persons", "search: page (read)"),
    (service, "_event", "audit: event"),
    (audit_service, "_row", "audit: row (canonical json, hash)"),
    (audit_repo, "send_entry", "audit: send entry"),
    (repo, "send_aliases", "aliases: send"),
    (service, "_person_page", "shape: page model"),
    (shaping, "person_rows", "shape: rows (masks)"),
    (enforcement, "send_claims", "decide: rate claim (statements)"),
    (enforcement, "internal_policy", "decide: internal policy"),
    (search, "PersonPage", "shape: page model"),
    (Session, "connection", "begin (first Session.connection)"),
    (Connection, "exec_driver_sql", "floor: SQL (search, aliases, scratch insert)"),
    (Session, "commit", "commit"),
    (Session, "close", "session close"),
]


class Phases:
    """Own time (CPU and wall, ns) per phase of the call being timed."""

    def __init__(self) -> None:
        # Per phase running: [cpu at start, wall at start, cpu of timed callees, their wall].
        self.stack: list[list[int]] = []
        self.cpu: dict[str, int] = {}
        self.wall: dict[str, int] = {}

    def run(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``function`` as a phase; its time is taken out of the phase it runs in."""
        frame = [time.thread_time_ns(), time.perf_counter_ns(), 0, 0]
        self.stack.append(frame)
        try:
            return function(*args, **kwargs)
        finally:
            cpu = time.thread_time_ns() - frame[0]
            wall = time.perf_counter_ns() - frame[1]
            self.stack.pop()
            self.cpu[name] = self.cpu.get(name, 0) + cpu - frame[2]
            self.wall[name] = self.wall.get(name, 0) + wall - frame[3]
            if self.stack:
                self.stack[-1][2] += cpu
                self.stack[-1][3] += wall


PHASES = Phases()


def _wrap(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    run = PHASES.run

    @wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        return run(name, function, *args, **kwargs)

    return timed


def install() -> None:
    """Wrap every timed function where the call looks it up."""
    originals: dict[int, Callable[..., Any]] = {}
    for module, attribute, name in TIMED:
        function = getattr(module, attribute)
        original = originals.setdefault(id(function), function)
        setattr(module, attribute, _wrap(original, name))


def run(variants: dict[str, Callable[[str], None]], values: list[str], rounds: int) -> Any:
    """Every variant on every value, rotating, ``rounds`` times; per-phase medians."""
    names = list(variants)
    for value in values:
        for name in names:
            variants[name](value)
    per: dict[str, dict[str, list[int]]] = {n: {} for n in names}
    whole: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    i = 0
    for _ in range(rounds):
        for value in values:
            for name in names[i % len(names) :] + names[: i % len(names)]:
                PHASES.cpu.clear()
                PHASES.wall.clear()
                PHASES.run("(rest of the call)", variants[name], value)
                for phase, cpu in PHASES.cpu.items():
                    per[name].setdefault(phase, []).append(cpu)
                    per[name].setdefault("wall:" + phase, []).append(PHASES.wall[phase])
                whole[name].append((sum(PHASES.cpu.values()), sum(PHASES.wall.values())))
            i += 1
    out: dict[str, Any] = {}
    for name in names:
        calls = len(whole[name])
        phases = {}
        for phase, samples in per[name].items():
            if phase.startswith("wall:"):
                continue
            walls = per[name]["wall:" + phase]
            # Mean per call (a phase not run in every call counts zero there): means add up.
            phases[phase] = {
                "cpu_us": round(sum(samples) / calls / 1000, 1),
                "wall_us": round(sum(walls) / calls / 1000, 1),
            }
        out[name] = {
            "calls": calls,
            "cpu_p50_us": round(_pct([c for c, _ in whole[name]], 0.5) / 1000, 1),
            "wall_p50_us": round(_pct([w for _, w in whole[name]], 0.5) / 1000, 1),
            "cpu_mean_us": round(sum(c for c, _ in whole[name]) / calls / 1000, 1),
            "wall_mean_us": round(sum(w for _, w in whole[name]) / calls / 1000, 1),
            "phases": dict(sorted(phases.items(), key=lambda kv: -kv[1]["cpu_us"])),
        }
    return out


def untimed(variants: dict[str, Callable[[str], None]], values: list[str], rounds: int) -> Any:
    """The same calls without the phase timers: CPU and wall p50/mean, us."""
    names = list(variants)
    cpu: dict[str, list[int]] = {n: [] for n in names}
    wall: dict[str, list[int]] = {n: [] for n in names}
    i = 0
    for _ in range(rounds):
        for value in values:
            for name in names[i % len(names) :] + names[: i % len(names)]:
                c, w = time.thread_time_ns(), time.perf_counter_ns()
                variants[name](value)
                cpu[name].append(time.thread_time_ns() - c)
                wall[name].append(time.perf_counter_ns() - w)
            i += 1
    return {
        n: {
            "cpu_p50_us": round(_pct(cpu[n], 0.5) / 1000, 1),
            "wall_p50_us": round(_pct(wall[n], 0.5) / 1000, 1),
            "cpu_mean_us": round(sum(cpu[n]) / len(cpu[n]) / 1000, 1),
            "wall_mean_us": round(sum(wall[n]) / len(wall[n]) / 1000, 1),
        }
        for n in names
    }


def main() -> None:
    """Load (or reuse) the search bench's data, then time the variants by phase."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the values")
    parser.add_argument("--quick", action="store_true", help="2 passes (a smoke run)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the loaded data here (as search.py)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    load_all_models()
    persons = 50_000
    figures: dict[str, Any] = {"backend": args.backend, "persons": persons}
    with database(args.backend, persons, args.data_dir) as (url, _kept):
        data, _ = prepare_data(url, persons)
        engine = make_engine(url)
        try:
            db = Database(engine)
            reader = external_reader(engine, SCOPE)
            internal = data.reader()
            policy = external_compiler()()
            columns = repo.person_columns(policy)
            aliases = policy.person_fields.shows("aliases")
            rng = random.Random(7)
            values = {
                "sid": [data.random_sid(rng) for _ in range(40)],
                "name_prefix": [data.random_family_prefix(rng) for _ in range(30)],
            }
            context = ReadContext(purpose=PURPOSE)
            variants = {
                kind: {
                    "floor": partial(
                        bare, db, columns, aliases, kind, count=False, durable_write=True
                    ),
                    "internal": partial(full_service, db, internal, ReadContext(), kind),
                    "external": partial(full_service, db, reader, context, kind),
                }
                for kind in values
            }
            figures["loadavg_before"] = os.getloadavg()
            for kind, kind_variants in variants.items():
                figures[f"untimed_{kind}"] = untimed(kind_variants, values[kind], args.rounds)
            install()
            for kind, kind_variants in variants.items():
                figures[kind] = run(kind_variants, values[kind], args.rounds)
                for name, timed in figures[kind].items():
                    plain = figures[f"untimed_{kind}"][name]["cpu_mean_us"]
                    timed["timer_cost_cpu_us"] = round(timed["cpu_mean_us"] - plain, 1)
            figures["loadavg_after"] = os.getloadavg()
        finally:
            engine.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
