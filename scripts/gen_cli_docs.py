#!/usr/bin/env python3
"""Generate docs/cli.md from the Typer app; ``--check`` fails if the file is stale.

The reference is built from the commands themselves (their docstrings, parameters, defaults),
so it cannot drift from the code: the test suite runs ``--check``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from openpars.cli import app

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
HEADER = """# Command-line reference

Generated from the code by `scripts/gen_cli_docs.py`; do not edit by hand (the test suite fails
when this file is stale: regenerate it with `.venv/bin/python scripts/gen_cli_docs.py`).

Every command that touches the database takes `--db URL`, which overrides
`OPENPARS_DATABASE_URL`. Each command is one transaction and leaves audit entries exactly as
the same act through the API does. Errors print `error: <message> (field: <field>)` on stderr
and exit 1 (2 when the command line itself is wrong).
"""


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name, sub in subcommands.items():
        if not getattr(sub, "hidden", False):
            yield from _commands(sub, (*path, name))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(path: tuple[str, ...], command: Any) -> list[str]:
    ctx = command.context_class(command, info_name=path[-1])
    arguments = [p for p in command.params if not p.opts[0].startswith("-")]
    usage = " ".join(("openpars", *path, "[OPTIONS]", *(a.name.upper() for a in arguments)))
    lines = [f"## `openpars {' '.join(path)}`", "", (command.help or "").strip(), ""]
    lines += [f"Usage: `{usage}`", ""]
    records = [p.get_help_record(ctx) for p in command.params if not p.hidden]
    records = [r for r in records if r is not None]
    if records:
        lines += ["| parameter | description |", "|---|---|"]
        lines += [f"| `{_cell(name)}` | {_cell(text)} |" for name, text in records]
        lines.append("")
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    root = typer.main.get_command(app)
    lines = [HEADER]
    groups = getattr(root, "commands", {})
    for name, group in groups.items():
        if getattr(group, "commands", None) is not None and group.help:
            lines.append(f"- `openpars {name}`: {_cell(group.help)}")
        else:
            lines.append(f"- `openpars {name}`: {_cell((group.help or '').splitlines()[0])}")
    lines.append("")
    for path, command in _commands(root, ()):
        lines += _section(path, command)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    """Write docs/cli.md, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if docs/cli.md is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is stale; run: .venv/bin/python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
