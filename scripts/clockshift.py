"""A pytest plugin that runs every test across a clock boundary (midnight, a month's or year's
end, a Sunday night), to find tests whose outcome depends on the wall clock.

Not part of the suite: load it through ``scripts/pytest-clockshift.sh``, which preloads
libfaketime (Debian: ``apt-get install faketime``) with its clock re-read on every call. Before
each test's fixtures the plugin moves the clock to a minute before ``CLOCKSHIFT_TARGET``; just
before the test's body it jumps forward to ``CLOCKSHIFT_LEAD`` seconds before it (as a slow
fixture would), so the body crosses the boundary. Vary the lead to move the crossing through
the body. Only Python's clock moves: the monotonic clock and the PostgreSQL server's are real
(openpars takes every timestamp from Python). Known artefact: ``time.sleep`` can fail with
EINVAL under libfaketime; such a failure says nothing about the test.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

_offset = [0.0]
TARGET = datetime.fromisoformat(os.environ["CLOCKSHIFT_TARGET"]).replace(tzinfo=UTC).timestamp()
LEAD = float(os.environ.get("CLOCKSHIFT_LEAD", "1"))


def move(to: float, *, forward_only: bool = False) -> None:
    """Set the faked clock to the POSIX time ``to`` (never back, with ``forward_only``)."""
    fake = datetime.now(UTC).timestamp()
    if forward_only and fake >= to:
        return
    offset = to - (fake - _offset[0])
    os.environ["FAKETIME"] = f"{offset:+.3f}"
    _offset[0] = offset


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    move(TARGET - LEAD - 60)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    move(TARGET - LEAD, forward_only=True)
