"""One shape for every list the API answers: a page of items, the total and the window.

No audited answer is a bare JSON array: an object carries the ``audit_entry`` receipt in its
body (``web.audit_entries``) as well as in the header, and can grow a field without breaking
a client. Lists the caller walks are pages (``Page``); the results of one request that the
request itself bounds (a batch's items, a match's ``limit``) come whole, as ``Results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from annotated_types import Ge, Le
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

# The largest page any list answers, as for the lists that were paginated before.
MAX_PAGE = 500
PageSize = Annotated[int, Ge(1), Le(MAX_PAGE)]


class Page(BaseModel, Generic[T]):
    """One page of results; ``total`` counts only what the caller may see."""

    items: list[T]
    total: int = Field(description="rows in all, of which this page shows items")
    offset: int = Field(description="rows skipped before this page")
    limit: int = Field(description="the page size asked for (the site maximum applies)")


class Results(BaseModel, Generic[T]):
    """Every result of one request, in one answer: the request bounds how many there are."""

    items: list[T]


def page_of(items: Sequence[T], *, offset: int, limit: int) -> Page[T]:
    """A page cut from a complete, ordered list that one record bounds (a history, a timeline)."""
    return Page[T](
        items=list(items[offset : offset + limit]), total=len(items), offset=offset, limit=limit
    )


def count_of(session: Session, query: Select[Any]) -> int:
    """How many rows ``query`` returns in all, in one count over it (its order dropped)."""
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return int(session.scalar(counted) or 0)
