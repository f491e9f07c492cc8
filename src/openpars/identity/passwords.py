"""Password rules and hashing: Argon2id, a minimum length, no compromised passwords.

CJIS Security Policy v5.9.5 (IA-5(1)) asks for at least 8 characters and a check against a
list of commonly used or compromised passwords; openpars requires 12 by default
(``OPENPARS_PASSWORD_MIN_LENGTH``, never below 8) and checks the list shipped in
``identity/data`` (its origin and licence are in the README there). Hashes are Argon2id with
argon2-cffi's RFC 9106 low-memory profile; a hash made with weaker parameters is replaced at
the next successful check. No function here logs or returns a password.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from openpars.errors import InvalidInput

CJIS_MIN_LENGTH = 8
DEFAULT_MIN_LENGTH = 12
# Argon2 is slow by design; an unbounded password would let a caller spend the server's CPU.
MAX_LENGTH = 256

_HASHER = PasswordHasher()  # Argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


@lru_cache(maxsize=1)
def compromised_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords, lower case (read once)."""
    data = resources.files("openpars.identity").joinpath("data/common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def normalise(password: str) -> str:
    """NFKC form, so the same characters typed on two keyboards give the same password."""
    return unicodedata.normalize("NFKC", password)


def check_policy(
    password: str, *, username: str, min_length: int, field: str = "new_password"
) -> None:
    """Raise InvalidInput, naming ``field`` and the rule, unless the password may be used."""
    candidate = normalise(password)
    length = len(candidate)
    if length < min_length:
        raise InvalidInput(
            f"the password is {length} characters long; it must be at least {min_length}",
            code="password_too_short",
            field=field,
        )
    if length > MAX_LENGTH:
        raise InvalidInput(
            f"the password is {length} characters long; it may be at most {MAX_LENGTH}",
            code="password_too_long",
            field=field,
        )
    if candidate.strip() != candidate:
        raise InvalidInput(
            "the password starts or ends with a space; remove it (it is easy to mistype)",
            code="password_whitespace",
            field=field,
        )
    if len(set(candidate)) < 4:
        raise InvalidInput(
            "the password uses fewer than 4 different characters; choose a less repetitive one",
            code="password_repetitive",
            field=field,
        )
    lowered = candidate.lower()
    if lowered in compromised_passwords():
        raise InvalidInput(
            "this password is on the list of common and breached passwords; choose another",
            code="password_compromised",
            field=field,
        )
    if len(username) >= 3 and username.lower() in lowered:
        raise InvalidInput(
            "the password contains the username; choose one that does not",
            code="password_contains_username",
            field=field,
        )


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string, salt and parameters included) of a password."""
    return _HASHER.hash(normalise(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; never raises for a wrong password."""
    if len(password) > MAX_LENGTH * 4:
        return False
    try:
        return _HASHER.verify(stored_hash, normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than today's."""
    return _HASHER.check_needs_rehash(stored_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("openpars-dummy-password-for-timing")


def burn_time(password: str) -> None:
    """Spend what a real check costs, for an unknown user (no user enumeration by timing)."""
    verify_password(_dummy_hash(), password)
