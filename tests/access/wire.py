"""Reading a libpq protocol trace (PostgreSQL): how many turns the conversation took."""

from __future__ import annotations


def turns(trace: str) -> int:
    """Round trips in a trace: each time the client sends after the server last spoke
    (statements sent together in a pipeline count once)."""
    count, last = 0, "B"
    for line in trace.splitlines():
        direction = line.split("\t")[0].strip()[:1]
        count += direction == "F" and last == "B"
        last = direction if direction in ("F", "B") else last
    return count


def statements_by_turn(trace: str) -> list[list[str]]:
    """The statements of each round trip in a trace, as ``turns`` counts them: each the text
    of a Parse (extended protocol: after the statement's name) or of a simple Query, up to
    the end of its first line."""
    found: list[list[str]] = []
    last = "B"
    for line in trace.splitlines():
        fields = line.split("\t")
        direction = fields[0].strip()[:1]
        if direction == "F" and last == "B":
            found.append([])
        last = direction if direction in ("F", "B") else last
        if direction != "F" or len(fields) < 4 or fields[2] not in ("Parse", "Query"):
            continue
        rest = fields[3].strip()
        if fields[2] == "Parse":  # "name" "text" n ...: skip the name
            rest = rest[rest.index('"', 1) + 1 :].strip()
        # A statement's text may go on over lines of its own: its first line is kept.
        end = rest.rindex('"')
        found[-1].append(rest[1:end] if end > 0 else rest[1:])
    return found
