"""The edge check on query-string and path parameters: no control or bidi-override characters."""

from __future__ import annotations

import re

from fastapi import Request

from openpars.errors import InvalidInput

# C0 and C1 controls (NUL, line breaks, escape ...) and the bidirectional embeddings,
# overrides and isolates that make text display in an order other than it is stored.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def describe(char: str) -> str:
    """A character as a person can read it in an error message: ``U+0000``."""
    return f"U+{ord(char):04X}"


def refuse_unsafe_parameters(request: Request) -> None:
    """Raise InvalidInput (422) naming the first query or path parameter with such a character."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        for text in (str(name), str(value)):
            found = UNSAFE.search(text)
            if found is not None:
                field = UNSAFE.sub("?", str(name))
                raise InvalidInput(
                    f"{field}: the parameter contains the control or direction-override "
                    f"character {describe(found.group())}, which is never valid; remove it",
                    code="invalid_input",
                    field=field,
                    details={"rule": "no_control_characters"},
                )
