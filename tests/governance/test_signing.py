"""The canonical vote encoding and Ed25519 signatures over it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openpars.errors import InvalidInput
from openpars.governance import signing
from openpars.governance.quorum import Choice, ProposalAction

HASH = "ab" * 32
PRIVATE = signing.load_private_pem(signing.generate_private_pem())
KEY = signing.fingerprint(signing.public_raw(PRIVATE))


def statement(**overrides: object) -> signing.VoteStatement:
    fields: dict[str, object] = {
        "proposal_id": 7,
        "agreement_id": 3,
        "version_hash": HASH,
        "action": ProposalAction.RENEW,
        "effective_at": None,
        "new_expires_at": datetime(2027, 8, 1, tzinfo=UTC),
        "stakeholder_id": 12,
        "key_fingerprint": KEY,
        "choice": Choice.YES,
        "rationale_sha256": signing.rationale_digest("renew with the 2010 scope"),
        "at": datetime(2026, 8, 1, 12, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return signing.VoteStatement(**fields)  # type: ignore[arg-type]


def test_the_encoding_is_the_documented_lines() -> None:
    encoded = statement().encode()
    assert encoded == (
        b"openpars-vote/v2\nproposal 7\nagreement 3\nversion-hash "
        + HASH.encode()
        + b"\naction renew\neffective-at none\nnew-expires-at 2027-08-01T00:00:00.000000Z"
        + b"\nstakeholder 12\nkey "
        + KEY.encode()
        + b"\nchoice yes\nrationale-sha256 "
        + signing.rationale_digest("renew with the 2010 scope").encode()
        + b"\nat 2026-08-01T12:00:00.000000Z\n"
    )


def test_the_documented_example_is_byte_exact() -> None:
    """docs/governance.md shows these exact bytes; a verifier written from it must agree."""
    example = signing.VoteStatement(
        proposal_id=7,
        agreement_id=3,
        version_hash="5" * 64,
        action=ProposalAction.TERMINATE,
        effective_at=datetime(2026, 9, 1, tzinfo=UTC),
        new_expires_at=None,
        stakeholder_id=2,
        key_fingerprint="c" * 64,
        choice=Choice.YES,
        rationale_sha256=signing.rationale_digest("Arrestees only, as in 2010."),
        at=datetime(2026, 8, 1, 12, tzinfo=UTC),
    )
    docs = (Path(__file__).parents[2] / "docs" / "governance.md").read_text(encoding="utf-8")
    block = docs.split("```text\n", 2)[1].split("```", 1)[0]
    assert block.encode("utf-8") == example.encode()
    assert signing.VoteStatement.decode(example.encode()) == example


def test_v1_statements_still_decode_by_their_format_line() -> None:
    old = signing.VoteStatementV1(
        proposal_id=7,
        agreement_id=3,
        version_hash=HASH,
        choice=Choice.NO,
        rationale_sha256=HASH,
        at=datetime(2026, 8, 1, 12, tzinfo=UTC),
    )
    assert old.encode().startswith(b"openpars-vote/v1\nproposal 7\nagreement 3\n")
    assert signing.decode_statement(old.encode()) == old
    assert signing.decode_statement(statement().encode()) == statement()
    with pytest.raises(InvalidInput, match="canonical"):
        signing.VoteStatementV1.decode(old.encode().replace(b".000000Z", b"+00:00"))
    with pytest.raises(InvalidInput, match="malformed"):
        signing.VoteStatementV1.decode(old.encode().replace(b"choice no", b"choice nah"))


def test_differences_name_the_lines() -> None:
    changed = statement(action=ProposalAction.TERMINATE, stakeholder_id=13)
    assert changed.differences(statement()) == [
        ("action", "terminate", "renew"),
        ("stakeholder", "13", "12"),
    ]


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
        effective_at=moment if proposal % 2 else None,
        new_expires_at=None if agreement % 2 else moment,
    )
    assert signing.VoteStatement.decode(original.encode()) == original


def test_an_offset_time_is_encoded_in_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    moment = datetime(2026, 8, 1, 8, 0, tzinfo=eastern)
    assert b"at 2026-08-01T12:00:00.000000Z\n" in statement(at=moment).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"openpars-vote/v3\nproposal 7\n",
        statement().encode().replace(b"proposal 7", b"proposal 07"),
        statement().encode().replace(b"action renew", b"action renewal"),
        statement().encode().replace(b"effective-at none", b"effective-at None"),
        statement().encode().replace(b"effective-at none", b"effective-at "),
        statement().encode().replace(b"stakeholder 12", b"stakeholder +12"),
        statement().encode().replace(KEY.encode(), KEY.upper().encode()),
        statement().encode().replace(b"\nstakeholder 12\n", b"\n"),
        statement()
        .encode()
        .replace(b"action renew\neffective-at none", b"effective-at none\naction renew"),
        statement().encode().replace(b"\n", b"\r\n"),
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
    private = PRIVATE
    document = signing.sign_vote(private, statement(), "renew with the 2010 scope")
    public = signing.parse_public_key(signing.public_pem(private).decode())
    assert document["key_fingerprint"] == signing.fingerprint(public)
    signature = signing.decode_b64(document["signature"], field="signature", length=64)
    assert signing.verify(public, signature, statement().encode())
    assert not signing.verify(public, signature, statement(choice=Choice.NO).encode())
    other = signing.load_private_pem(signing.generate_private_pem())
    assert not signing.verify(signing.public_raw(other), signature, statement().encode())


def test_the_rationale_must_match_its_digest() -> None:
    with pytest.raises(InvalidInput, match="rationale"):
        signing.sign_vote(PRIVATE, statement(), "a different reason")


def test_the_statement_must_name_the_signing_key() -> None:
    other = signing.load_private_pem(signing.generate_private_pem())
    with pytest.raises(InvalidInput, match="another key") as caught:
        signing.sign_vote(other, statement(), "renew with the 2010 scope")
    assert caught.value.field == "key_fingerprint"


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
