"""One typed settings object; nothing else in openpars reads the environment."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BANNER = (
    "You are accessing a criminal justice information system. Use is restricted to "
    "authorised users for official purposes only. All use is recorded and monitored, and "
    "may be disclosed to law enforcement and oversight bodies. Unauthorised or improper use "
    "may result in disciplinary action and civil and criminal penalties. By continuing you "
    "consent to this monitoring."
)


def default_database_url() -> str:
    """A SQLite file in the working directory, the embedded default."""
    return f"sqlite:///{Path.cwd() / 'openpars.db'}"


class Settings(BaseSettings):
    """Every tunable of an openpars site, read from ``OPENPARS_*`` variables or passed in."""

    model_config = SettingsConfigDict(env_prefix="OPENPARS_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    # PostgreSQL only: the login external agencies' reads run as, the database's external role
    # (ADR 0004). Unset: database_url with user <database>_external and no password (peer or
    # certificate authentication, or a .pgpass entry, supplies it).
    external_database_url: str | None = None
    site_name: str = "openpars"
    # Requests larger than this are refused before parsing (bytes).
    max_request_bytes: int = 1_000_000
    # Default and maximum page sizes for every paginated listing.
    page_size_default: int = 50
    page_size_max: int = 500
    # Intake refuses an arrest time before this day (site-local) as a typo; a site entering
    # older records sets an earlier one.
    earliest_arrest_date: date = date(1950, 1, 1)
    # Lifetime of newly issued API tokens, in days.
    token_lifetime_days: int = 90
    # Shortest password accepted for an account (docs/accounts.md); CJIS IA-5(1) asks for 8.
    password_min_length: int = Field(default=12, ge=8, le=128)
    # Multi-factor authentication (docs/accounts.md): the AES-256-GCM key that encrypts every
    # TOTP secret at rest, as a file holding 32 random bytes in base64 (mode 0600). Unset: the
    # file openpars-mfa.key beside the SQLite database, or in the working directory. Generated
    # only while no account is enrolled; after that a missing key is an error, never a new key.
    mfa_key_path: Path | None = None
    # The system-use notice (CJIS AC-8) every user acknowledges at each logon.
    banner_text: str = Field(default=DEFAULT_BANNER, min_length=20, max_length=4000)
    # A privileged act (a vote, an agreement change, a key change, a shred, a user change) needs
    # password and one-time code proved within this many minutes in the session (IA-11).
    reauthentication_minutes: int = Field(default=5, ge=1, le=720)
    # Whether an API token (a machine client: no password, no one-time code) may perform
    # privileged acts. False: only an interactive, recently re-authenticated session may.
    token_privileged_acts: bool = True
    # Echo SQL to the log (debugging only).
    sql_echo: bool = False
    # SQLite only: bytes of the database file read through memory-mapped I/O (MiB; 0 turns it
    # off). Reads of index and table pages then skip a system call and a copy each, which at a
    # million persons more than halves a search's time in SQLite (bench/search.py).
    sqlite_mmap_mb: int = Field(default=1024, ge=0)
    # SQLite only: FULL fsyncs the write-ahead log at every commit, so an access and its audit
    # entry survive a power loss; NORMAL survives a crash of openpars but may lose the last
    # commits on a power loss, for about 0.45 ms less per audited request (bench/audit_overhead).
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Seconds between governance steps (deadlines, effective instants, renewal notices).
    governance_tick_interval_s: float = Field(default=60.0, gt=0)
    # Audit log: publish a checkpoint at most this often while entries arrive, and at least
    # this often otherwise (seconds).
    checkpoint_min_interval_s: float = 1.0
    checkpoint_max_interval_s: float = 60.0
    # Distinct witness cosignatures that make a checkpoint final.
    witness_quorum: int = 2
    # The log's Ed25519 signing key (a C2SP signer key file); when unset, next to the SQLite
    # database or in the working directory. Generated only while the log has no checkpoint;
    # after that a missing or different key stops the server (audit/checkpoints.py).
    log_key_path: Path | None = None
    # The checkpoint origin line and key name; defaults to "<site_name>/audit".
    log_origin: str | None = None
    # Oversight (docs/oversight.md). DuckDB reading the store for the detectors, explanation
    # and coverage (`--engine duckdb`): its memory_limit (its buffers; the detectors' rows in
    # Python come on top: docs/benchmarks.md, branch h13duck2).
    oversight_duckdb_memory: str = Field(default="1GB", pattern=r"^[0-9]+(\.[0-9]+)?[KMGT]i?B$")
    # The DuckDB file `--engine duckdb` keeps its copy of the store in, brought up to the store
    # at each run (oversight.duck_kept); unset: a temporary file copied whole at each run.
    oversight_duckdb_file: Path | None = None
    # An access citing a case within this many hours after an explained access by the same
    # user to the same case is explained as a follow-up.
    oversight_follow_up_hours: int = Field(default=72, ge=0, le=24 * 366)
    # An access returning at least this many persons is bulk, whatever it cites.
    oversight_bulk_results: int = Field(default=10, ge=2)
    # An access among at least this many external reads by the same user within plus or minus
    # this many minutes is part of a sweep (enumerating).
    oversight_sweep_queries: int = Field(default=20, ge=2)
    oversight_sweep_minutes: int = Field(default=30, ge=1)
    # Purposes that need no case: explained by an exact-identifier lookup of one charged person.
    oversight_caseless_purposes: list[str] = Field(
        default_factory=lambda: ["warrant-check", "warrant-service"]
    )
    # What-if replay (docs/oversight.md): at most this many external reads are replayed per
    # request; a longer window is refused (field months) rather than answered in minutes.
    oversight_whatif_max_queries: int = Field(default=20_000, ge=1, le=1_000_000)

    # The public transparency report (docs/oversight.md): epsilon of one month's release (all
    # cells together), and how many external reads of one account a month are counted.
    transparency_epsilon: float = Field(default=1.0, gt=0, le=10)
    transparency_contributions: int = Field(default=50, ge=1, le=100_000)
    # Detectors (docs/oversight.md, "Detectors"). Volume bursts: a user's day of external reads
    # at least this robust z above the median of their active days in the history window, with
    # at least the minimum reads that day and the minimum active days of history.
    oversight_burst_z: float = Field(default=5.0, gt=0)
    oversight_burst_min_queries: int = Field(default=20, ge=1)
    oversight_burst_history_days: int = Field(default=28, ge=1)
    oversight_burst_min_history_days: int = Field(default=7, ge=1)
    # Enumeration: a name search of one word of at most this many letters (or with *, %, ?).
    oversight_wildcard_letters: int = Field(default=3, ge=2)
    # Enumeration: a user fetching at least this many consecutive person ids in one UTC day.
    oversight_sequential_run: int = Field(default=5, ge=2)
    # Enumeration: a user's UTC day with at least this many searches, this share returning none.
    oversight_zero_hit_min_queries: int = Field(default=10, ge=1)
    oversight_zero_hit_share: float = Field(default=0.5, gt=0, le=1)
    # Enumeration: a user's UTC day with at least this many arrest searches by date range only.
    oversight_date_sweep_queries: int = Field(default=5, ge=2)
    # One case reference cited by an agency for at least this many persons not in that case,
    # within this many days.
    oversight_shared_case_persons: int = Field(default=5, ge=2)
    oversight_shared_case_days: int = Field(default=30, ge=1)
    # One person looked up by at least this many distinct users in one window of this many hours.
    oversight_person_many_users: int = Field(default=5, ge=2)
    oversight_person_window_hours: int = Field(default=24, ge=1, le=24 * 31)
    # Skew: a category at least this z (two-proportion test) and this ratio above its share of
    # the arrestees arrested within this many days before the period, with this many persons.
    oversight_skew_z: float = Field(default=3.0, gt=0)
    oversight_skew_ratio: float = Field(default=1.5, gt=1)
    oversight_skew_min_count: int = Field(default=5, ge=1)
    # ... for an agency that looked up at least this many distinct persons in the period.
    oversight_skew_min_persons: int = Field(default=30, ge=1)
    oversight_skew_population_days: int = Field(default=730, ge=1)
    oversight_home_citizenship: str = "US"
    # Never charged: distinct never-charged persons looked up in the period, and their share of
    # all distinct persons looked up, per user and per agency.
    oversight_never_charged_user_min: int = Field(default=3, ge=1)
    oversight_never_charged_user_share: float = Field(default=0.2, gt=0, le=1)
    oversight_never_charged_agency_min: int = Field(default=10, ge=1)
    oversight_never_charged_agency_share: float = Field(default=0.1, gt=0, le=1)
    # Off hours: a user's UTC day with at least this many reads at hours (plus or minus one) they
    # worked in on under this share of their active days in the history window, for users with
    # at least the minimum active days there (a regular pattern).
    oversight_off_hours_min_queries: int = Field(default=3, ge=1)
    oversight_off_hours_share: float = Field(default=0.1, gt=0, lt=1)
    oversight_off_hours_history_days: int = Field(default=28, ge=1)
    oversight_off_hours_min_days: int = Field(default=15, ge=1)
    # Dormant: a read after this many days without one (or since the account was created).
    oversight_dormant_days: int = Field(default=60, ge=1)

    @field_validator("database_url", "external_database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        """Accept ``postgresql://`` and route it to psycopg 3."""
        if value is None:
            return None
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @property
    def receipt_retry_after_s(self) -> int:
        """How long to tell a caller to wait for a receipt whose entry no checkpoint covers yet:
        two checkpoint intervals, at least a second."""
        return max(1, math.ceil(self.checkpoint_min_interval_s * 2))

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is embedded SQLite."""
        return self.database_url.startswith("sqlite")
