"""Load N synthetic persons with ~1 arrest and ~3 involvements each, fast, into the real tables.

SQLite gets SQLAlchemy Core executemany in chunks of 10,000; PostgreSQL gets COPY through the
driver connection. Rows are generated from one seeded RNG, so a seed gives the same data.
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Engine, Table, text
from sqlalchemy.orm import Session

from openpars.db import UTCDateTime, make_unpooled_engine
from openpars.identity.models import Agency, User, UserRole
from openpars.identity.principal import Principal
from openpars.identity.roles import AgencyKind, Role
from openpars.records.models import Arrest, Charge, Involvement, Person, PersonAlias
from openpars.records.validation import name_key

from .names import BIRTHPLACES, FAMILY, GIVEN, MIDDLE, STATUTES, STREETS

CHUNK = 10_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)
FIRST_ARREST = datetime(2015, 1, 1, tzinfo=UTC)
STATES = (
    ("entered", 5),
    ("charged", 10),
    ("declined", 5),
    ("arraigned", 10),
    ("released", 50),
    ("committed", 20),
)
# Extra roles per arrest and their mean count; with ~1.25 arrestees, ~3 involvements per arrest.
OTHER_ROLES = (("victim", 0.7), ("witness", 0.55), ("complainant", 0.3), ("affiant", 0.2))

FAMILIES = FAMILY.split()
GIVENS = GIVEN.split()
MIDDLES = MIDDLE.split()


def sid_of(person_id: int) -> str | None:
    """The SID of a person: unique (an odd multiplier not divisible by 5 permutes 10^9)."""
    return None if person_id % 10 == 0 else f"{person_id * 2654435761 % 10**9:09d}"


def fbi_of(person_id: int) -> str | None:
    """The FBI number of a person, unique like the SID."""
    if person_id % 7 == 0:
        return None
    n = person_id * 2246822519 % 10**9
    return f"{n // 1000:06d}{'ABCDEFGHJK'[n // 100 % 10]}{'LMNPRTUVWX'[n // 10 % 10]}{n % 10}"


@dataclass
class Loaded:
    """What was loaded, and how to draw random existing search values from it."""

    persons: int
    agency_id: int
    user_id: int
    family: array[int] = field(repr=False)
    given: array[int] = field(repr=False)
    counts: dict[str, int] = field(default_factory=dict)

    def reader(self) -> Principal:
        """The loaded police reader (an internal caller)."""
        return Principal(
            user_id=self.user_id,
            username="bench-reader",
            agency_id=self.agency_id,
            agency_kind=AgencyKind.POLICE,
            roles=frozenset({Role.READER}),
            agency_path=(self.agency_id,),
        )

    def _person(self, rng: random.Random) -> int:
        return rng.randint(1, self.persons)

    def random_sid(self, rng: random.Random) -> str:
        """An existing SID."""
        while (sid := sid_of(self._person(rng))) is None:
            pass
        return sid

    def random_family_prefix(self, rng: random.Random) -> str:
        """The first 3-5 letters of a real family name, as typed (accents and all)."""
        name = FAMILIES[self.family[self._person(rng)]]
        return name[: rng.randint(3, 5)]

    def random_family_given_prefix(self, rng: random.Random) -> str:
        """A whole family name and the first 1-3 letters of a given name of the same person."""
        pid = self._person(rng)
        return f"{FAMILIES[self.family[pid]]} {GIVENS[self.given[pid]][: rng.randint(1, 3)]}"


DATABASE_KEPT = frozenset({"floor_visible"})


def _sink(engine: Engine, table: Table, rows: Iterable[tuple[Any, ...]]) -> int:
    """Write rows (in the table's column order) in chunks; return how many."""
    # Not the columns the database keeps itself (persons.floor_visible, access/rls.py).
    columns = [c.name for c in table.columns if c.name not in DATABASE_KEPT]
    total = 0
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                copy_sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
                        total += 1
            raw.commit()
        finally:
            raw.close()
        return total
    # SQLite: the values as SQLAlchemy itself stores them, so Core's per-value processing
    # (the bulk of the load time) is skipped while the rows read back exactly as the ORM wrote.
    convert = _sqlite_converters(table)
    insert = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        with engine.begin() as conn:
            conn.exec_driver_sql(insert, [convert(row) for row in chunk])
        total += len(chunk)
    return total


def _sqlite_converters(table: Table) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    stamps = [i for i, c in enumerate(table.columns) if isinstance(c.type, UTCDateTime)]
    dates = [i for i, c in enumerate(table.columns) if isinstance(c.type, Date)]

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i in stamps:
            if values[i] is not None:
                values[i] = values[i].strftime("%Y-%m-%d %H:%M:%S.%f")
        for i in dates:
            if values[i] is not None:
                values[i] = values[i].isoformat()
        return tuple(values)

    return convert


def _weights(n: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 1) ** exponent for rank in range(n)))


class _Generator:
    """Seeded rows of every table; person attributes kept for involvements and queries."""

    def __init__(self, persons: int, seed: int, agency_id: int) -> None:
        self.n = persons
        self.rng = random.Random(seed)
        self.agency_id = agency_id
        self.family = array("H", [0]) * (persons + 1)
        self.given = array("H", [0]) * (persons + 1)
        self.birth = array("i", [0]) * (persons + 1)
        self.arrest_dates: array[int] = array("i")

    def persons(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        fam_w, giv_w = _weights(len(FAMILIES), 0.5), _weights(len(GIVENS), 0.5)
        families = rng.choices(range(len(FAMILIES)), cum_weights=fam_w, k=self.n)
        givens = rng.choices(range(len(GIVENS)), cum_weights=giv_w, k=self.n)
        for pid in range(1, self.n + 1):
            f, g = families[pid - 1], givens[pid - 1]
            self.family[pid], self.given[pid] = f, g
            middle = rng.choice(MIDDLES) if rng.random() < 0.5 else None
            age_days = int(rng.triangular(12, 85, 24) * 365.25)
            birth = NOW.date() - timedelta(days=age_days)
            self.birth[pid] = birth.toordinal()
            place, country = rng.choice(BIRTHPLACES)
            yield (
                pid,
                FAMILIES[f],
                GIVENS[g],
                middle,
                name_key(FAMILIES[f], GIVENS[g], middle),
                birth,
                rng.choice("MMMFFU"),
                rng.choice("WBBBAIPU"),
                f"{rng.randint(100, 9999)} {rng.choice(STREETS)}, Philadelphia, PA",
                f"215-555-01{rng.randint(0, 99):02d}",
                place,
                country,
                sid_of(pid),
                fbi_of(pid),
                1,
                NOW,
                NOW,
            )

    def aliases(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        # One person in twenty has an alias.
        for alias_id, pid in enumerate(range(1, self.n + 1, 20), start=1):
            family, given = rng.choice(FAMILIES), GIVENS[self.given[pid]]
            yield (alias_id, pid, family, given, name_key(family, given))

    def arrests(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        span = int((NOW - FIRST_ARREST).total_seconds())
        states = rng.choices([s for s, _ in STATES], weights=[w for _, w in STATES], k=self.n)
        for aid in range(1, self.n + 1):
            at = FIRST_ARREST + timedelta(seconds=rng.randrange(span))
            self.arrest_dates.append(at.date().toordinal())
            sealed = at + timedelta(days=700) if rng.random() < 0.02 else None
            expunged = at + timedelta(days=900) if rng.random() < 0.003 else None
            state = states[aid - 1]
            docket = (
                f"MC-51-CR-{aid:07d}-{at.year}"
                if state in ("arraigned", "released", "committed")
                else None
            )
            yield (
                aid,
                f"N{aid:08d}-1",
                f"{at.year}{rng.randint(1, 39):02d}{aid:07d}",
                "PAPEP0000",
                f"P/O {rng.choice(FAMILIES)} #{rng.randint(1000, 9999)}",
                at,
                f"{rng.randint(100, 9999)} {rng.choice(STREETS)}",
                rng.choice(("on_view", "on_view", "warrant", "summons")),
                None,
                state,
                docket,
                self.agency_id,
                f"R{aid:09d}",
                None,
                None,
                sealed,
                expunged,
                f"CP-51-MD-{aid:07d}-2025" if sealed or expunged else None,
                1,
                at,
                at,
            )

    def _count(self, mean: float) -> int:
        # A whole part plus a Bernoulli remainder: mean-preserving and cheap.
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0)

    def involvements(self) -> Iterator[tuple[Any, ...]]:
        rng, n = self.rng, self.n
        iid = 0
        for aid in range(1, n + 1):
            day = self.arrest_dates[aid - 1]
            taken: set[int] = set()
            roles = [("arrestee", 1 + self._count(0.25))]
            roles += [(role, self._count(mean)) for role, mean in OTHER_ROLES]
            for role, count in roles:
                for _ in range(count):
                    # Repeat arrestees: most arrestee slots come from a fifth of the people.
                    if role == "arrestee" and rng.random() < 0.6:
                        pid = rng.randrange(5, n + 1, 5)
                    else:
                        pid = rng.randint(1, n)
                    if pid in taken:
                        continue
                    taken.add(pid)
                    iid += 1
                    juvenile = day - self.birth[pid] < 18 * 365.25
                    yield (iid, aid, pid, role, juvenile)

    def charges(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        cid = 0
        for aid in range(1, self.n + 1):
            at = datetime.fromordinal(self.arrest_dates[aid - 1]).replace(tzinfo=UTC)
            for seq, (statute, description, grade) in enumerate(
                rng.sample(STATUTES, rng.choice((1, 1, 2, 2, 3))), start=1
            ):
                cid += 1
                yield (cid, aid, "recommended", 1, seq, statute, description, grade, 1, at, None)


def _accounts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        agency = Agency(
            name="Philadelphia Police Department", ori="PAPEP0000", kind=AgencyKind.POLICE
        )
        session.add(agency)
        session.flush()
        user = User(username="bench-reader", display_name="Bench Reader", agency_id=agency.id)
        session.add(user)
        session.flush()
        session.add(UserRole(user_id=user.id, role=Role.READER))
        session.commit()
        return agency.id, user.id


def _analyze(engine: Engine, tables: Sequence[str]) -> None:
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        return
    with engine.begin() as conn:
        for table in tables:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )
    admin = make_unpooled_engine(engine.url.render_as_string(hide_password=False))
    with admin.connect() as conn:
        # VACUUM as well as ANALYZE: a bulk-loaded table has no visibility map until then.
        for table in tables:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    admin.dispose()


def reloaded(engine: Engine, *, persons: int, seed: int) -> Loaded:
    """What `load` returned for data already in the database (same size and seed)."""
    with Session(engine) as session:
        user = session.query(User).filter_by(username="bench-reader").one()
        agency_id, user_id = user.agency_id, user.id
        tables = ("persons", "person_aliases", "arrests", "involvements", "charges")
        counts = {
            name: int(session.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in tables
        }
    gen = _Generator(persons, seed, agency_id)
    for _ in gen.persons():  # Replays the seeded names the queries are drawn from.
        pass
    return Loaded(persons, agency_id, user_id, gen.family, gen.given, counts)


def load(engine: Engine, *, persons: int, seed: int) -> Loaded:
    """Fill the schema with N persons and their arrests; ANALYZE; return what was loaded."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB while loading.
    agency_id, user_id = _accounts(engine)
    gen = _Generator(persons, seed, agency_id)
    tables: list[tuple[Table, Iterable[tuple[Any, ...]]]] = [
        (Person.__table__, gen.persons()),  # type: ignore[list-item]
        (PersonAlias.__table__, gen.aliases()),  # type: ignore[list-item]
        (Arrest.__table__, gen.arrests()),  # type: ignore[list-item]
        (Involvement.__table__, gen.involvements()),  # type: ignore[list-item]
        (Charge.__table__, gen.charges()),  # type: ignore[list-item]
    ]
    # Secondary indexes are built after each table's load: one sort instead of a million random
    # inserts. Each table's own, before the next table loads: the involvements' insert updates
    # the persons (their floor column, access/rls.py), and an index built over rows updated that
    # way (HOT chains) is refused by every plan whose snapshot predates the build, i.e. while
    # any transaction anywhere in the cluster is older (the SID lookups then read all persons).
    indexes = [index for table, _ in tables for index in table.indexes]
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    counts: dict[str, int] = {}
    for table, rows in tables:
        counts[table.name] = _sink(engine, table, rows)
        with engine.begin() as conn:
            for index in table.indexes:
                index.create(conn)
    _analyze(engine, [table.name for table, _ in tables])
    return Loaded(persons, agency_id, user_id, gen.family, gen.given, counts)
