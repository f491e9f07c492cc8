"""Detectors before and after a change, alternated in one process on one DuckDB reader.

    .venv/bin/python bench/oversight_detectors_ab.py --store NAME --before COMMIT
        [--detectors off_hours,never_charged] [--rounds 2] [--postgresql]
        [--duckdb-file PATH] | --quick

``NAME`` is a PostgreSQL store kept by ``bench/oversight.py --keep-db`` with its facts brought
up to the log. The module ``openpars.oversight.detectors`` as it was at ``COMMIT`` (``git
show``) is loaded beside the working tree's. One ``oversight.duck.reader`` (the copy of
``DEFAULT_COPIED`` timed once: ``setup_s``); then, ``--rounds`` times, each named detector
before and after, alternated (the order swapped every round), over the whole store, each
timed (wall, and the process's CPU with DuckDB's threads); the drafts' digest
(``oversight_duckdb_pass.digest``) of each side must be equal. With ``--postgresql`` the same
on the store itself (``whole_store_memory``). Peak RSS is the process's. ``--duckdb-file``:
the reader's DuckDB file is that one, kept between runs (``oversight.duck_kept``: built on the
first run, brought up to the store on the next), not a copy made afresh. Nothing is written
to the store. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from openpars.db import make_engine
from openpars.models import load_all_models
from openpars.oversight import detectors as after
from openpars.oversight import duck
from openpars.oversight.detection import FlagDraft
from openpars.oversight.facts import whole_store_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oversight as generator  # bench/oversight.py, beside this script
from oversight_duckdb_pass import PG_URL, digest

Detector = Callable[..., list[FlagDraft]]


def module_at(commit: str, folder: Path) -> ModuleType:
    """``openpars.oversight.detectors`` as it was at ``commit``, under another name."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{commit}:src/openpars/oversight/detectors.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "detectors_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("openpars.oversight._detectors_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def rounds(
    session: Session,
    sides: dict[str, ModuleType],
    names: list[str],
    count: int,
    memory: Callable[[], AbstractContextManager[Any]],
) -> dict[str, Any]:
    """Each detector on each side ``count`` times, alternated: times, drafts, digests."""
    out: dict[str, Any] = {}
    for name in names:
        figures: dict[str, Any] = {side: {"s": [], "cpu_s": [], "drafts": None} for side in sides}
        order = list(sides)
        for round_ in range(count):
            for side in order if round_ % 2 == 0 else order[::-1]:
                detector: Detector = getattr(sides[side], name)
                with memory():
                    started, cpu = time.perf_counter(), time.process_time()
                    drafts = detector(session, None, None)
                    took = round(time.perf_counter() - started, 3)
                    cpu = round(time.process_time() - cpu, 3)
                session.rollback()
                figures[side]["s"].append(took)
                figures[side]["cpu_s"].append(cpu)
                figures[side]["drafts"] = len(drafts)
                figures[side]["sha256"] = digest(drafts)
                print(name, side, took, cpu, len(drafts), file=sys.stderr, flush=True)
        figures["same_drafts"] = len({figures[side]["sha256"] for side in sides}) == 1
        out[name] = figures
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_all_models()
    url = PG_URL.rsplit("/", 1)[0] + f"/{args.store}"
    names = [n for n in args.detectors.split(",") if n]
    figures: dict[str, Any] = {"store": args.store, "before": args.before, "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="openpars-ab-") as folder:
        sides = {"before": module_at(args.before, Path(folder)), "after": after}
        started = time.perf_counter()
        kept = None if args.duckdb_file is None else Path(args.duckdb_file)
        with duck.reader(url, kept_file=kept) as reader:
            reader.connection()
            figures["setup_s"] = round(time.perf_counter() - started, 3)
            print("setup_s", figures["setup_s"], file=sys.stderr, flush=True)
            figures["duckdb"] = rounds(reader, sides, names, args.rounds, nullcontext)
        figures["peak_rss_mib_after_duckdb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        if args.postgresql:
            engine = make_engine(url)
            with Session(engine) as pg:
                figures["postgresql"] = rounds(
                    pg, sides, names, args.rounds, lambda: whole_store_memory(pg)
                )
            engine.dispose()
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["cpus"] = os.cpu_count()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    generator.add_kept_store_arguments(parser)
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--detectors", default="off_hours", help="comma-separated names")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgresql", action="store_true", help="on the store itself too")
    parser.add_argument("--duckdb-file", default=None, help="a kept DuckDB file to read through")
    args = generator.kept_store_arguments(parser)
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
