"""The governance ticker: applies decisions whose effective instant arrived, fails proposals past
their deadline, opens renewal notices. Access itself never waits for it: expiry is time-based in
``agreements.grants.grant_for``."""

from __future__ import annotations

import logging
import threading

from openpars.db import Database, utcnow
from openpars.governance.decisions import tick
from openpars.governance.schemas import GovernanceEvent
from openpars.identity.accounts_job import disable_dormant_accounts

log = logging.getLogger("openpars.governance")


class Ticker:
    """Runs ``tick`` in its own transaction every ``interval`` seconds on a daemon thread."""

    def __init__(self, db: Database, *, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> list[GovernanceEvent]:
        """One governance step now; what tests and the loop call."""
        now = utcnow()  # one instant for the whole step: both halves see the same day
        with self.db.session() as session:
            events = tick(session, now=now)
        with self.db.session() as session:
            events += disable_dormant_accounts(session, now=now)
        return events

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                events = self.step()
            except Exception:  # keep ticking; the next round retries the same work
                log.exception("governance tick failed; retrying in %.0f s", self.interval)
                continue
            if events:
                log.info("governance tick: %s", ", ".join(e.kind for e in events))

    def start(self) -> None:
        """Start the background loop."""
        self._thread = threading.Thread(target=self._run, name="governance-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
