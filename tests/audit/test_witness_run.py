"""`openpars-verify witness run` against the real app served over HTTP on a loopback port."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from openpars_verify import cli as verify_cli
from openpars_verify import note as vnotes
from openpars_verify import watch

from openpars.audit import checkpoints
from openpars.audit import witness as registry
from openpars.config import Settings
from openpars.db import Database
from openpars.web.app import create_app
from tests.audit.test_api_log import publish
from tests.audit.test_log import add_entries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Server:
    """The real app over a test database, served by uvicorn in a thread; can stop and restart."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.app = create_app(settings, database=db)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        until(lambda: self.server is not None and self.server.started, "uvicorn did not start")

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=30)


def until(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


@pytest.fixture
def served(settings: Settings, db: Database) -> Iterator[Server]:
    server = Server(settings, db)
    server.start()
    yield server
    if server.thread is not None and server.thread.is_alive():
        server.stop()


class Stakeholder:
    """A witness's key (made by the verifier), its state directory and what it logged."""

    def __init__(self, name: str, home: Path, log_vkey: str) -> None:
        self.skey, self.vkey = vnotes.generate(name, vnotes.COSIGNER_KEY)
        self.home, self.log_vkey = home, log_vkey
        home.mkdir()
        (home / "key").write_text(self.skey + "\n")
        self.lines: list[tuple[float, str]] = []

    def watch(self, url: str, **options: float) -> watch.Watch:
        """A fresh witness process (in memory: nothing but the state directory carries over)."""
        return watch.Watch(
            server=url,
            log_key=vnotes.parse_public_key(self.log_vkey),
            signer=vnotes.parse_private_key(self.skey),
            state_dir=self.home / "state",
            interval=options.get("interval", 0.05),
            max_backoff=options.get("max_backoff", 0.2),
            log=lambda line: self.lines.append((time.monotonic(), line)),
        )

    def last(self) -> str:
        return self.lines[-1][1]


def register(db: Database, vkey: str) -> None:
    with db.session() as session:
        registry.install(session, vkey=vkey)


def cosigners(db: Database) -> int:
    with db.session() as session:
        return checkpoints.cosigner_count(session, checkpoints.latest(session))


@pytest.fixture
def stakeholder(db: Database, settings: Settings, tmp_path: Path) -> Stakeholder:
    log_vkey = checkpoints.check_key(settings, db).vkey
    witness = Stakeholder("da.witness.example", tmp_path / "da", log_vkey)
    register(db, witness.vkey)
    return witness


def test_it_cosigns_new_checkpoints_and_resumes_from_its_state(
    served: Server, db: Database, settings: Settings, stakeholder: Stakeholder
) -> None:
    add_entries(db, 3)
    publish(db, settings)
    first = stakeholder.watch(served.url)
    assert watch.run(first, once=True) == 0
    assert stakeholder.last().startswith("cosigned size 4: 1 of 2 witnesses, not final yet")
    assert cosigners(db) == 1
    assert watch.run(first, once=True) == 0
    assert "nothing new" in stakeholder.last()
    # Restarted after the log grew: the state file holds size 4, so it checks 4 -> 9.
    add_entries(db, 5)
    publish(db, settings)
    assert watch.run(stakeholder.watch(served.url), once=True) == 0
    assert stakeholder.last().startswith("cosigned size 9")
    assert cosigners(db) == 1


def test_it_backs_off_while_the_server_is_down_and_recovers(
    served: Server, db: Database, settings: Settings, stakeholder: Stakeholder
) -> None:
    add_entries(db, 2)
    publish(db, settings)
    served.stop()
    witness = stakeholder.watch(served.url, interval=0.05, max_backoff=0.4)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(watch.run(witness)))
    runner.start()
    try:
        until(lambda: len(stakeholder.lines) >= 4, "the witness did not retry")
        problems = [(t, line) for t, line in stakeholder.lines if line.startswith("problem")]
        assert "cannot reach" in problems[0][1] and "(attempt 1)" in problems[0][1]
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(problems)]
        # Waits double from the interval (jittered down by at most half), capped by max_backoff.
        assert all(0.05 <= gap <= 0.4 + 0.3 for gap in gaps), gaps
        served.start()
        until(lambda: stakeholder.last().startswith("cosigned size 3"), "no recovery")
    finally:
        witness.stop.set()
        runner.join(timeout=30)
    assert result == [0] and stakeholder.last() == "stopped"
    assert cosigners(db) == 1


def test_a_single_round_reports_a_problem_with_its_own_exit_status(
    served: Server, db: Database, settings: Settings, tmp_path: Path
) -> None:
    log_vkey = checkpoints.check_key(settings, db).vkey
    stranger = Stakeholder("stranger.example", tmp_path / "x", log_vkey)
    # Nothing published yet: the server's own error code and message are in the one line.
    assert watch.run(stranger.watch(served.url), once=True) == watch.TRY_AGAIN
    assert "answered 404: not_found: no checkpoint has been published yet" in stranger.last()
    add_entries(db, 2)
    publish(db, settings)
    # Not a registered witness: the server refuses its cosignature, the witness retries later.
    assert watch.run(stranger.watch(served.url), once=True) == watch.TRY_AGAIN
    assert "witness_unknown" in stranger.last()
    # Another log's key: the served checkpoint is not this log's, and nothing is cosigned.
    _, other_log = vnotes.generate("another.example/audit", vnotes.NOTE_KEY)
    foreign = Stakeholder("x.example", tmp_path / "y", other_log)
    assert watch.run(foreign.watch(served.url), once=True) == watch.TRY_AGAIN
    assert "does not verify under the log key" in foreign.last()
    assert not (tmp_path / "y" / "state").exists()


def test_a_rewritten_log_is_refused_for_good(
    served: Server,
    db: Database,
    fresh_db: Database,
    settings: Settings,
    stakeholder: Stakeholder,
) -> None:
    add_entries(db, 4)
    publish(db, settings)
    assert watch.run(stakeholder.watch(served.url), once=True) == 0
    # The operator, holding the log key, serves a rewritten history from another database.
    add_entries(fresh_db, 9)
    publish(fresh_db, settings)
    register(fresh_db, stakeholder.vkey)
    forked = Server(settings, fresh_db)
    forked.start()
    try:
        assert watch.run(stakeholder.watch(forked.url), once=True) == 1
        assert stakeholder.last().startswith("REFUSED: consistency proof from size 5 to 10")
        # Restarted, even against the honest server again: it still refuses, and says why.
        assert watch.run(stakeholder.watch(served.url), once=True) == 1
        assert stakeholder.last().startswith("REFUSED earlier, not starting")
    finally:
        forked.stop()
    assert cosigners(fresh_db) == 0


def test_the_command_runs_until_sigterm(
    served: Server, db: Database, settings: Settings, stakeholder: Stakeholder
) -> None:
    add_entries(db, 2)
    publish(db, settings)
    command = [
        sys.executable, "-m", "openpars_verify", "witness", "run", "--server", served.url,
        "--log-key", stakeholder.log_vkey, "--witness-key-file", str(stakeholder.home / "key"),
        "--state-dir", str(stakeholder.home / "state"), "--interval", "0.1",
        "--max-backoff", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines: list[str] = []
    try:
        while not any("cosigned size 3" in line for line in lines):
            line = process.stderr.readline()
            assert line, f"the witness ended early: {lines}"
            lines.append(line)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    rest = process.stderr.read()
    assert "stopped" in rest
    assert "witnessing http://127.0.0.1" in lines[0]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    skey, _ = vnotes.generate("note.example", vnotes.NOTE_KEY)
    (tmp_path / "note-key").write_text(skey)
    _, log_vkey = vnotes.generate("log.example/audit", vnotes.NOTE_KEY)
    base = ["witness", "run", "--server", "http://127.0.0.1:9", "--log-key", log_vkey,
            "--state-dir", str(tmp_path / "s")]  # fmt: skip
    wrong_key = [*base, "--witness-key-file", str(tmp_path / "note-key")]
    assert verify_cli.main(wrong_key) == 2
    assert "cosigner key" in capsys.readouterr().err
    wskey, _ = vnotes.generate("w.example", vnotes.COSIGNER_KEY)
    (tmp_path / "w-key").write_text(wskey)
    zero = [*base, "--witness-key-file", str(tmp_path / "w-key"), "--interval", "0"]
    assert verify_cli.main(zero) == 2
    assert verify_cli.main(["witness"]) == 2
    assert "witness run" in capsys.readouterr().err
