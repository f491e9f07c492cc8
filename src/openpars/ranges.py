"""Integer types bounded by the columns they reach: one definition for every API and schema.

A number past its column's range is refused as a 422 naming the field, never sent to the
database (where PostgreSQL's INTEGER ends at 2,147,483,647 and SQLite's at 2**63 - 1, and either
way the driver raised a 500). An id in range but unknown stays a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from annotated_types import Ge, Le
from pydantic import AfterValidator, AwareDatetime

# PostgreSQL INTEGER, the type of every primary and foreign key outside the audit log.
INT32_MAX = 2_147_483_647
# PostgreSQL BIGINT and SQLite INTEGER: the audit log's ids, leaf indexes and tree sizes.
INT64_MAX = 9_223_372_036_854_775_807

RowId = Annotated[int, Ge(1), Le(INT32_MAX)]
"""The id of a row in an INTEGER key column (arrests, persons, agencies, agreements ...)."""

Offset = Annotated[int, Ge(0), Le(INT32_MAX)]
"""How many rows a page skips."""

AuditNumber = Annotated[int, Ge(0), Le(INT64_MAX)]
"""An audit entry id, leaf index or tree size (BIGINT columns); 0 can mean 'from the start'."""

AuditSize = Annotated[int, Ge(1), Le(INT64_MAX)]
"""A tree size or an entry id that must name something (from 1)."""


def _storable(value: datetime) -> datetime:
    # The database keeps instants in UTC; 0001-01-01T00:00:00+14:00 has no UTC form in Python.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant has no UTC equivalent (year 1 to 9999 in UTC)") from None


Instant = Annotated[AwareDatetime, AfterValidator(_storable)]
"""A date and time with its zone, representable in UTC (search bounds)."""
