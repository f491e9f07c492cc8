"""Text that request bodies may carry: no control, bidirectional-override or invisible characters.

A NUL ends a string in PostgreSQL (the driver refuses it, so the request failed with a 500)
while SQLite stores it; other control characters corrupt exports, terminals and logs; and
right-to-left overrides and invisible format characters make a name display differently
from how it sorts, matches and is searched ("Trojan Source"). Every text field of every
request body is one of the two types below, so each such character is refused with a 422
naming the field; tests/test_text.py walks the OpenAPI document so a new field cannot forget.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator

# The two format characters some scripts need inside words (Persian, Hindi, emoji sequences):
# ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER. Every other format character (category Cf:
# bidirectional embeddings, overrides, isolates and marks, zero-width spaces, word joiners,
# the byte-order mark, soft hyphens) is invisible or reorders text, and is refused.
_JOINERS = frozenset("\u200c\u200d")
# Line breaks a multi-line field keeps; every other control character is refused.
_PROSE_CONTROLS = frozenset("\n\t\r")
# Line and paragraph separators (Zl, Zp) break lines without being newlines.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def forbidden_character(value: str, *, multi_line: bool = False) -> tuple[int, str] | None:
    """The first character text may not hold, with its position, or None when all are fine."""
    allowed = _PROSE_CONTROLS if multi_line else frozenset()
    for position, char in enumerate(value):
        # Printable ASCII is by far the common case, and never refused.
        if " " <= char <= "~" or char in allowed or char in _JOINERS:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return position, char
    return None


def _describe(char: str) -> str:
    """'U+202E (RIGHT-TO-LEFT OVERRIDE)': how a person reading an error can find the character."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _check(value: str, *, multi_line: bool) -> str:
    found = forbidden_character(value, multi_line=multi_line)
    if found is not None:
        position, char = found
        kept = "line breaks and tabs are the only" if multi_line else "no"
        raise ValueError(
            f"contains the invisible or control character {_describe(char)} at position "
            f"{position}; {kept} control characters are allowed here, and no "
            "bidirectional-override or zero-width characters: retype the text without it"
        )
    return value


def check_line(value: str) -> str:
    """Refuse a one-line text holding a control or invisible format character."""
    return _check(value, multi_line=False)


def check_prose(value: str) -> str:
    """Refuse a multi-line text holding a control (other than line breaks and tabs) or an
    invisible format character."""
    return _check(value, multi_line=True)


def check_document(value: Any) -> Any:
    """Refuse a JSON document whose keys or string values hold such a character."""
    if isinstance(value, str):
        return check_line(value)
    if isinstance(value, dict):
        for key, item in value.items():
            check_document(key)
            check_document(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_document(item)
    return value


# A one-line text: names, identifiers, references, short reasons.
Line = Annotated[str, AfterValidator(check_line)]
# A multi-line text: narratives, terms, reasons, conditions; keeps newlines and tabs.
Prose = Annotated[str, AfterValidator(check_prose)]
# A free-form JSON document (the site floor): every key and string value is one-line text.
Document = Annotated[dict[str, Any], AfterValidator(check_document)]
