"""The canonical vote encoding and Ed25519 signatures over it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.quorum import Choice

HASH = "ab" * 32


def statement(**overrides: object) -> signing.VoteStatement:
    fields: dict[str, object] = {
        "proposal_id": 7,
        "agreement_id": 3,
        "version_hash": HASH,
        "choice": Choice.YES,
        "rationale_sha256": signing.rationale_digest("renew with the 2010 scope"),
        "at": datetime(2026, 8, 1, 12, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return signing.VoteStatement(**fields)  # type: ignore[arg-type]


def test_the_encoding_is_the_documented_lines() -> None:
    encoded = statement().encode()
    assert encoded == (
        b"openpars-vote/v1\nproposal 7\nagreement 3\nversion-hash "
        + HASH.encode()
        + b"\nchoice yes\nrationale-sha256 "
        + signing.rationale_digest("renew with the 2010 scope").encode()
        + b"\nat 2026-08-01T12:00:00.000000Z\n"
    )


@given(
    st.integers(1, 2**31),
    st.integers(1, 2**31),
    st.sampled_from(Choice),
    st.text(max_size=50),
    st.datetimes(timezones=st.just(UTC)),
)
def test_decode_inverts_encode(
    proposal: int, agreement: int, choice: Choice, rationale: str, moment: datetime
) -> None:
    original = statement(
        proposal_id=proposal,
        agreement_id=agreement,
        choice=choice,
        rationale_sha256=signing.rationale_digest(rationale),
        at=moment,
    )
    assert signing.VoteStatement.decode(original.encode()) == original


def test_an_offset_time_is_encoded_in_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    moment = datetime(2026, 8, 1, 8, 0, tzinfo=eastern)
    assert b"at 2026-08-01T12:00:00.000000Z\n" in statement(at=moment).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"openpars-vote/v2\nproposal 7\n",
        statement().encode().replace(b"proposal 7", b"proposal 07"),
        statement().encode().replace(b"choice yes", b"choice maybe"),
        statement().encode() + b"extra\n",
        statement().encode().replace(b".000000Z", b"Z"),
        b"\xff\xfe",
    ],
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        signing.VoteStatement.decode(data)
    assert caught.value.field == "signed"


def test_sign_and_verify_and_tampering() -> None:
    private = signing.load_private_pem(signing.generate_private_pem())
    document = signing.sign_vote(private, statement(), "renew with the 2010 scope")
    public = signing.parse_public_key(signing.public_pem(private).decode())
    assert document["key_fingerprint"] == signing.fingerprint(public)
    signature = signing.decode_b64(document["signature"], field="signature", length=64)
    assert signing.verify(public, signature, statement().encode())
    assert not signing.verify(public, signature, statement(choice=Choice.NO).encode())
    other = signing.load_private_pem(signing.generate_private_pem())
    assert not signing.verify(signing.public_raw(other), signature, statement().encode())


def test_the_rationale_must_match_its_digest() -> None:
    private = signing.load_private_pem(signing.generate_private_pem())
    with pytest.raises(InvalidInput, match="rationale"):
        signing.sign_vote(private, statement(), "a different reason")


@pytest.mark.parametrize(
    ("value", "message"),
    [("not base64!!", "not valid base64"), (base64.b64encode(b"x" * 63).decode(), "63 bytes")],
)
def test_malformed_signatures(value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        signing.decode_b64(value, field="signature", length=64)
    assert caught.value.field == "signature"


def test_public_keys_in_pem_or_raw_base64() -> None:
    private = signing.load_private_pem(signing.generate_private_pem())
    raw = signing.public_raw(private)
    assert signing.parse_public_key(base64.b64encode(raw).decode()) == raw
    with pytest.raises(InvalidInput, match="32 bytes"):
        signing.parse_public_key(base64.b64encode(raw[:31]).decode())
    with pytest.raises(InvalidInput, match="PEM"):
        signing.parse_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")


def test_times_parse_strictly() -> None:
    assert signing.parse_at("2026-08-01T12:00:00Z") == datetime(2026, 8, 1, 12, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="no time zone"):
        signing.parse_at("2026-08-01T12:00:00")
    with pytest.raises(InvalidInput, match="RFC 3339"):
        signing.parse_at("yesterday", field="deadline")
