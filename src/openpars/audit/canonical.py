"""The canonical JSON an audit entry commits to, and the entry's text written field by field.

The canonical form is json.dumps(document, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, default=str), UTF-8. json.dumps builds a new encoder for every call, which
costs as much as the encoding, so the C encoder with those same settings is built once. Without
the circular-reference check an impossible self-containing document fails with RecursionError
instead of ValueError; the bytes of every other document are the same.

An entry's document (``audit.service.entry_document``) has fixed keys, so its text is written
here key by key (``entry_text``) instead of building the document and having the encoder sort
and walk it: the same text, since canonical JSON is compositional (a value's text inside a
document is its text alone). Every value the writer does not know to the type (a bool, an int
or str subclass, a float, a container) goes through the encoder itself. A value of the params
whose text was written once by its owner (a read's decision: ``ReadPolicy.explained``) is copied
(``AuditEvent.encoded_params``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from openpars.audit.events import AuditKind, Outcome

if TYPE_CHECKING:
    from openpars.audit.events import AuditEvent

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_c_encode = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, str, encode_basestring, None, ":", ",", True, False, True)
)


def canonical_text(value: Any) -> str:
    """Canonical JSON text of any value the log accepts (sorted keys, no spaces, not ASCII-
    escaped, anything outside JSON written as its str)."""
    if _c_encode is None:  # pragma: no cover - CPython always has the C encoder
        return _ENCODER.encode(value)
    return "".join(_c_encode(value, 0))


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8; the bytes the commitment is over."""
    return canonical_text(document).encode("utf-8")


def _values(values: tuple[object, ...]) -> list[str]:
    """The canonical text of each value: None, a str or an int written here as the encoder
    writes them (``encode_basestring`` is the function the encoder calls for a str, and an
    int's digits are ``int.__repr__``); anything else by the encoder. One comprehension, not a
    call per value (a Python call costs more than the writing)."""
    return [
        "null"
        if value is None
        else encode_basestring(value)
        if type(value) is str
        else int.__repr__(value)
        if type(value) is int
        else canonical_text(value)
        for value in values
    ]


def _params(params: dict[str, Any], encoded: Mapping[str, str] | None) -> str:
    """The params' text: each value's text in the order of their keys, a value with a text in
    ``encoded`` copied from it. Without such texts, or with a key that is not a str (the
    encoder writes those its own way), the encoder writes the whole; keys that cannot be
    sorted fail as they fail the encoder (TypeError)."""
    if not encoded:
        return canonical_text(params)
    parts = []
    for key in sorted(params):
        if type(key) is not str:
            return canonical_text(params)
        text = encoded.get(key)
        if text is None:
            value = params[key]
            text = (
                "null"
                if value is None
                else encode_basestring(value)
                if type(value) is str
                else canonical_text(value)
            )
        parts.append(f"{encode_basestring(key)}:{text}")
    return "{" + ",".join(parts) + "}"


# Every kind and outcome is a lowercase word: quoted, nothing to escape (checked here).
KIND_VALUES = {kind: kind.value for kind in AuditKind}
OUTCOME_VALUES = {outcome: outcome.value for outcome in Outcome}
_KIND_TEXTS = {kind: f'"{value}"' for kind, value in KIND_VALUES.items()}
_OUTCOME_TEXTS = {outcome: f'"{value}"' for outcome, value in OUTCOME_VALUES.items()}
assert all(
    encode_basestring(value) == text
    for values, texts in ((KIND_VALUES, _KIND_TEXTS), (OUTCOME_VALUES, _OUTCOME_TEXTS))
    for value, text in zip(values.values(), texts.values(), strict=True)
)


def entry_text(event: AuditEvent, at_iso: str, persons: list[int], arrests: list[int]) -> str:
    """``canonical_text(entry_document(...))`` of an entry at the instant ``at_iso`` (its ISO
    form: digits and separators, nothing to escape), ``persons`` and ``arrests`` being the
    event's sorted distinct subject ids; the keys in their sorted order."""
    action, agency, agreement, version, error, address, user, username = _values(
        (event.action, event.agency_id, event.agreement_id, event.agreement_version,
         event.error_code, event.source_ip, event.user_id, event.username)
    )  # fmt: skip
    return (
        f'{{"action":{action},"agency_id":{agency},"agreement_id":{agreement},'
        f'"agreement_version":{version},'
        f'"arrest_ids":{canonical_text(arrests) if arrests else "[]"},'
        f'"at":"{at_iso}","error_code":{error},'
        f'"kind":{_KIND_TEXTS[event.kind]},"outcome":{_OUTCOME_TEXTS[event.outcome]},'
        f'"params":{_params(event.params, event.encoded_params)},'
        f'"person_ids":{canonical_text(persons) if persons else "[]"},'
        f'"source_ip":{address},"user_id":{user},"username":{username}}}'
    )
