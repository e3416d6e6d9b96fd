"""Case numbers: ``96811-2026-000123``, consecutive within a year, never reused.

One statement allocates a number atomically on both backends::

    INSERT INTO case_number_counters (year, last) VALUES (:year, 1)
    ON CONFLICT (year) DO UPDATE SET last = case_number_counters.last + 1
    RETURNING last

On PostgreSQL the upsert locks the year's counter row until the transaction
ends, so concurrent transactions queue and each gets the next number; on SQLite
the database write lock (``BEGIN IMMEDIATE``, see bridge/db/engine.py) does the
same.  The number belongs to the caller's transaction: allocate it in the
transaction that inserts the case, so a rollback gives the number back and the
sequence stays without gaps.
"""
from __future__ import annotations

import re

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import CaseNumberCounter

DEFAULT_PREFIX = "96811"  # the one case-number prefix: filing, the forum post, the status line
_SHAPE = r"(?P<prefix>\d+)-(?P<year>\d{4})-(?P<serial>\d{6,})"
_NUMBER = re.compile(rf"^{_SHAPE}$")
_NUMBER_IN_TEXT = re.compile(rf"\b{_SHAPE}\b")


def format_case_number(year: int, serial: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{year:04d}-{serial:06d}"


def parse_case_number(number: str) -> tuple[str, int, int]:
    """'96811-2026-000123' -> ('96811', 2026, 123); ValueError if it is not a case number."""
    match = _NUMBER.match(number.strip())
    if not match:
        raise ValueError(f"not a case number: {number!r} (expected like 96811-2026-000123)")
    return match["prefix"], int(match["year"]), int(match["serial"])


def case_number_in(text: str) -> str | None:
    """The first case number written in ``text`` (a forum title, a message), if any."""
    match = _NUMBER_IN_TEXT.search(text or "")
    return match.group(0) if match else None


def next_serial(session: Session, year: int) -> int:
    """Take the next serial of ``year`` in the session's transaction."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - only the two supported backends
        raise RuntimeError(f"case numbers are not supported on {dialect}")
    table = CaseNumberCounter.__table__
    stmt = (
        insert(table)
        .values(year=year, last=1)
        .on_conflict_do_update(index_elements=[table.c.year], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )
    return int(session.execute(stmt).scalar_one())


def next_case_number(session: Session, year: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The next case number of ``year``, e.g. ``96811-2026-000123``.

    ``year`` is the year in the site's time zone (Asia/Shanghai), chosen by the caller; the
    case-status line completes a keyed "123" with the same year (``bridge.site.clock``).
    """
    return format_case_number(year, next_serial(session, year), prefix)
