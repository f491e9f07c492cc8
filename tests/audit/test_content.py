"""The prebuilt canonical encoder writes exactly what json.dumps with canonical settings does."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openpars.access.policy import ReadPolicy
from openpars.audit.canonical import canonical_text, entry_text
from openpars.audit.events import AuditEvent, AuditKind, Outcome
from openpars.audit.service import canonical_bytes, entry_document

_ids = st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=6)
_text = st.text(max_size=12)  # quotes, backslashes, controls, non-ASCII, astral code points
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


class Level(IntEnum):
    """An int subclass: the encoder must not take the plain-int fast path for it."""

    HIGH = 7


@st.composite
def events(draw: st.DrawFn) -> AuditEvent:
    """Events with every field drawn, including values of unusual types."""
    optional_int = st.none() | st.integers() | st.just(True) | st.just(Level.HIGH)
    return AuditEvent(
        kind=draw(st.sampled_from(AuditKind)),
        action=draw(_text),
        outcome=draw(st.sampled_from(Outcome)),
        user_id=draw(optional_int),
        username=draw(st.none() | _text),
        agency_id=draw(optional_int),
        source_ip=draw(st.none() | _text),
        params=draw(st.dictionaries(_text, _json, max_size=4)),
        person_ids=draw(_ids),
        arrest_ids=draw(_ids),
        agreement_id=draw(optional_int),
        agreement_version=draw(optional_int),
        error_code=draw(st.none() | _text),
    )


def reference(document: dict[str, Any]) -> bytes:
    """The canonical form by definition: json.dumps with the canonical settings, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


@given(events(), st.datetimes(timezones=st.just(UTC)))
def test_entry_content_is_the_canonical_document(event: AuditEvent, at: datetime) -> None:
    document = entry_document(event, at=at)
    assert canonical_bytes(document) == reference(document)
    assert document["person_ids"] == sorted(set(event.person_ids))


def test_values_outside_json_are_written_as_text_like_before() -> None:
    at = datetime(2026, 11, 28, 13, 0, tzinfo=timezone(timedelta(hours=-5)))
    params: dict[str, Any] = {"since": at.date(), "b": [1, 2], "a": {"z": None, "y": 1.5}}
    event = AuditEvent(kind=AuditKind.READ, action="r", params=params, person_ids=[3, 1, 3])
    content = canonical_bytes(entry_document(event, at=at))
    assert content == reference(entry_document(event, at=at))
    assert content.startswith(b'{"action":"r","agency_id":null,')
    assert b'"at":"2026-11-28T13:00:00.000000-05:00"' in content
    assert b'"params":{"a":{"y":1.5,"z":null},"b":[1,2],"since":"2026-11-28"}' in content
    assert b'"person_ids":[1,3]' in content


@given(events(), st.datetimes(timezones=st.just(UTC)), st.data())
def test_the_entry_written_field_by_field_is_the_canonical_document(
    event: AuditEvent, at: datetime, data: st.DataObject
) -> None:
    # Some of params' values given as their text (as a read gives its decision's), and a text
    # under a key params does not have: the entry is the document's canonical JSON all the same.
    given_keys = data.draw(st.sets(st.sampled_from(list(event.params)))) if event.params else set()
    encoded = {key: canonical_text(event.params[key]) for key in given_keys}
    event.encoded_params = {**encoded, "not in params": '"ignored"'} if encoded else None
    iso = at.isoformat(timespec="microseconds")
    persons, arrests = sorted(set(event.person_ids)), sorted(set(event.arrest_ids))
    text = entry_text(event, iso, persons, arrests)
    assert text.encode("utf-8") == reference(entry_document(event, at=at))


def test_params_the_writer_cannot_compose_are_written_by_the_encoder() -> None:
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    iso = at.isoformat(timespec="microseconds")
    for params in ({2: "b", 1: [None]}, {True: 1, 0.5: "x"}):
        event = AuditEvent(
            kind=AuditKind.SEARCH, action="a", params=params, encoded_params={"x": "1"}
        )
        assert entry_text(event, iso, [], []).encode() == reference(entry_document(event, at=at))
    mixed = AuditEvent(
        kind=AuditKind.SEARCH, action="a", params={1: "a", "b": 2}, encoded_params={"b": "2"}
    )
    with pytest.raises(TypeError):
        reference(entry_document(mixed, at=at))
    with pytest.raises(TypeError):
        entry_text(mixed, iso, [], [])


_clauses = st.lists(_text, max_size=4).map(tuple)


@given(
    st.booleans(),
    st.none() | st.integers(),
    st.none() | st.integers(),
    st.none() | _text,
    _clauses,
)
def test_a_policy_explains_itself_once_in_canonical_json(
    external: bool, agreement: int | None, version: int | None, digest: str | None, clauses: Any
) -> None:
    policy = ReadPolicy(
        external=external,
        agreement_id=agreement,
        agreement_version=version,
        agreement_hash=digest,
        clauses=clauses,
    )
    assert policy.explained() == json.dumps(
        policy.explain(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert policy.explained() is policy.explained()
    # The text is no part of the policy's value: a copy without it is equal, and writes it anew.
    copy = replace(policy)
    assert copy == policy and copy.explained() == policy.explained()
