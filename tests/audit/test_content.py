"""The prebuilt canonical encoder writes exactly what json.dumps with canonical settings does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

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
