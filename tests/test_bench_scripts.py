"""Every benchmark script takes ``--quick`` (the developers' guide: each finishes in under a
minute with it). Read from the scripts' syntax trees: importing them would run their set-up."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


# Modules the scripts share, not scripts themselves.
MODULES = {"roundtrips.py"}


def _scripts() -> list[Path]:
    return sorted(p for p in BENCH.glob("*.py") if p.name not in MODULES)


def _takes_quick(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        if name in ("add_kept_store_arguments", "add_named_store_arguments"):
            # bench/oversight.py's shared --quick
            return True
        if name == "add_argument" and any(
            isinstance(a, ast.Constant) and a.value == "--quick" for a in node.args
        ):
            return True
    return False


def test_the_shared_modules_are_not_scripts() -> None:
    for name in MODULES:
        assert '"__main__"' not in (BENCH / name).read_text("utf-8"), name


def test_every_bench_script_takes_quick() -> None:
    without = [p.name for p in _scripts() if not _takes_quick(ast.parse(p.read_text("utf-8")))]
    assert not without, f"bench scripts without --quick: {without}"
