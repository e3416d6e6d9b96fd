"""Bounds of the numbers a request may carry: page numbers and row ids.

Every paging parameter and every numeric id of every route is bounded, so that a client's
number never reaches the database out of range (``OFFSET`` past a 64-bit integer, an id past
PostgreSQL's ``integer``): FastAPI answers 422 instead of a server error, and the OpenAPI
document states the bounds.  HTML pages clamp with :func:`clamp_page` instead of refusing.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

# Far beyond any list a person pages through; page * per_page stays a small OFFSET.
MAX_PAGE = 10_000
# Row ids are PostgreSQL ``integer`` columns.
MAX_ID = 2**31 - 1

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE}")]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def clamp_page(page: int) -> int:
    """A page number for an HTML page: 1 to MAX_PAGE, whatever was asked."""
    return min(max(1, page), MAX_PAGE)


def clamp_id(value: int) -> int | None:
    """A row id in range, else None (an HTML page answers "not found" for it)."""
    return value if 1 <= value <= MAX_ID else None


__all__ = ["MAX_ID", "MAX_PAGE", "PageNumber", "RowId", "clamp_id", "clamp_page"]
