"""Field rules of the records domain: statute citations, docket numbers, name keys."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

# Pennsylvania Consolidated Statutes: title, section sign, section, optional subsections,
# e.g. "18 § 2701", "18 § 3502(a)(1)", "75 § 3802(a)(1)", "35 § 780-113(a)(16)".
STATUTE_PATTERN = r"^\d{1,2} § \d{1,4}(\.\d{1,3})?(-\d{1,4})?(\([a-z0-9.]{1,4}\)){0,4}$"
STATUTE_RE = re.compile(STATUTE_PATTERN)

# Municipal Court docket: MC-51-CR-0007226-2023 (court, county code, case type, number, year).
DOCKET_PATTERN = r"^MC-51-(CR|SU|MD|MJ)-\d{7}-(19|20)\d{2}$"
DOCKET_RE = re.compile(DOCKET_PATTERN)

# Offense Tracking Number: a letter and eight digits, a hyphen and a check digit (e.g. N1234567-8).
OTN_PATTERN = r"^[A-Z]\d{6,8}-\d$"
ORI_PATTERN = r"^[A-Z]{2}[A-Z0-9]{7}$"
SID_PATTERN = r"^[0-9A-Z-]{3,20}$"
FBI_PATTERN = r"^[0-9A-Z]{3,20}$"


def name_key(*parts: str | None) -> str:
    """Lower-case, accent-free, single-spaced join of name parts: the prefix-search key."""
    text = " ".join(p for p in parts if p)
    # A search checks and keys its name several times; names are short, the cache small.
    return _cached_key(text) if len(text) <= _CACHED_LENGTH else _key(text)


_CACHED_LENGTH = 64


@lru_cache(maxsize=1024)
def _cached_key(text: str) -> str:
    return _key(text)


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = unidecode(text).lower()
    text = re.sub(r"[^a-z0-9' -]+", " ", text)
    return " ".join(text.replace("-", " ").split())


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``.

    Prefix search is then an index range scan ``key >= prefix AND key < bound`` on both
    SQLite and PostgreSQL, independent of collation and of LIKE's case rules. An empty prefix
    has no bound (every string starts with it); callers refuse it before they get here.
    """
    if not prefix:
        raise ValueError("an empty prefix has no upper bound; refuse the search before this")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
