"""Processes starting at once on a new site agree on one log key, and none reads a half key."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from openpars.audit.checkpoints import key_file, key_path
from openpars.config import Settings


def _start_at_once(settings: Settings, starts: int) -> tuple[list[str], list[BaseException]]:
    """`starts` threads load or create the site's key at the same instant."""
    barrier = threading.Barrier(starts)
    keys: list[str] = []
    errors: list[BaseException] = []

    def first_start() -> None:
        barrier.wait()
        try:
            keys.append(key_file(settings, create=True).vkey)
        except BaseException as exc:  # collected for the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=first_start) for _ in range(starts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys, errors


def test_simultaneous_first_starts_share_one_complete_key(tmp_path: Path) -> None:
    # Before the key was linked into place whole, 198 of 200 such rounds had a loser read a
    # key file that existed but was still empty ("signer key must start with PRIVATE+KEY+").
    for trial in range(40):
        settings = Settings(database_url=f"sqlite:///{tmp_path / f'site-{trial}.db'}")
        keys, errors = _start_at_once(settings, 4)
        assert errors == [], errors
        assert len(keys) == 4 and len(set(keys)) == 1
        path = key_path(settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No temporary key file is left beside the keys.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
