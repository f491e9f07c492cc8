"""The MFA key and TOTP arithmetic: secrets encrypted at rest, codes checked once per step.

A TOTP secret is encrypted with AES-256-GCM under the site's MFA key (``OPENPARS_MFA_KEY_PATH``),
with the account's id as associated data, so a secret copied onto another account's row does not
decrypt. Codes follow RFC 6238 (SHA-1, 30-second steps, 6 digits); the step before and the step
after are accepted for clock drift, and a step at or before the last one accepted is refused, so
a code seen over someone's shoulder cannot be used again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
import secrets
from datetime import datetime
from pathlib import Path

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import make_url

from openpars.config import Settings
from openpars.errors import Conflict

KEY_FILE = "openpars-mfa.key"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_VERSION = "v1:"
# Recovery codes: 12 characters of an alphabet without look-alikes (60 bits), shown in groups.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def key_path(settings: Settings) -> Path:
    """Where the MFA key lives: the configured path, or beside the SQLite file."""
    if settings.mfa_key_path is not None:
        return settings.mfa_key_path
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            return Path(database).resolve().parent / KEY_FILE
    return Path.cwd() / KEY_FILE


def load_key(settings: Settings, *, may_create: bool) -> bytes:
    """The 32-byte MFA key; generated (mode 0600) only when ``may_create`` (nobody enrolled)."""
    path = key_path(settings)
    if not path.exists():
        if not may_create:
            raise Conflict(
                f"the MFA key file {path} is missing but accounts are enrolled: restore it from "
                "the backup (OPENPARS_MFA_KEY_PATH); a new key cannot read their secrets",
                code="mfa_key_missing",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (binascii.Error, ValueError, OSError) as exc:
        raise Conflict(
            f"the MFA key file {path} is unreadable or not base64: {exc}", code="mfa_key_invalid"
        ) from exc
    if len(key) != 32:
        raise Conflict(
            f"the MFA key file {path} holds {len(key)} bytes; it must hold 32 (AES-256)",
            code="mfa_key_invalid",
        )
    return key


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32, as authenticator apps expect."""
    return pyotp.random_base32(length=32)


def encrypt(key: bytes, user_id: int, secret: str) -> str:
    """The secret encrypted for storage on account ``user_id``."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), _aad(user_id))
    return _VERSION + base64.b64encode(nonce + sealed).decode()


def decrypt(key: bytes, user_id: int, stored: str) -> str:
    """The secret stored on account ``user_id``; Conflict if the key or the row is wrong."""
    try:
        if not stored.startswith(_VERSION):
            raise ValueError("unknown format")
        raw = base64.b64decode(stored[len(_VERSION) :], validate=True)
        return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(user_id)).decode()
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise Conflict(
            f"the MFA secret of user {user_id} does not decrypt with this site's MFA key: the "
            "key file was replaced or the row altered; an administrator must reset the MFA",
            code="mfa_secret_unreadable",
        ) from exc


def _aad(user_id: int) -> bytes:
    return f"openpars-mfa:user:{user_id}".encode()


def matching_step(secret: str, code: str, *, at: datetime) -> int | None:
    """The time step (within one of ``at``'s) whose code is ``code``, if any."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(at)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every step is compared, in constant time, so timing tells nothing of which matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def code_at(secret: str, at: datetime) -> str:
    """The code of ``at``'s time step (what an authenticator app shows then)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(at)


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code: an SVG document (error correction M, no XML declaration, a white
    background so it scans on a dark page too), usable as a file or inline in a page."""
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer,
        kind="svg",
        xmldecl=False,
        scale=4,
        dark="#000",
        light="#fff",
        title="MFA enrolment QR code",
    )
    return buffer.getvalue().decode()


def new_recovery_codes() -> list[str]:
    """Ten single-use recovery codes, like ``abcd-efgh-jkmn``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    """A recovery code as typed: case, spaces and dashes do not matter."""
    raw = "".join(ch for ch in code.lower() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else raw


def hash_recovery_code(code: str) -> str:
    """SHA-256 of a normalised recovery code (60 random bits, single use, rate-limited by the
    lockout: a fast hash is enough)."""
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()
