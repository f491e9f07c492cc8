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
