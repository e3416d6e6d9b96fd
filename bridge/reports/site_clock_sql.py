"""A stored UTC time read on the site's clock, in SQL (SQLite and PostgreSQL): its hour of the day
and its day within a period, so that figures by hour and by day are grouped by the database.

The zone's offset is a constant, or (a zone that changes its clock within the period) a CASE over
the instants where it changes, found hour by hour: the arithmetic is then whole seconds on both
backends, with no time-zone support asked of SQLite.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

DAY_S, HOUR_S = 86_400, 3_600
EPOCH = date(1970, 1, 1)


class EpochSeconds(FunctionElement):
    """Whole seconds since 1970-01-01 UTC of a stored time (rounded down)."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochSeconds)
def _epoch_sqlite(element, compiler, **kw):
    (moment,) = list(element.clauses)
    return f"CAST(strftime('%s', {compiler.process(moment, **kw)}) AS INTEGER)"


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    (moment,) = list(element.clauses)
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(moment, **kw)})) AS BIGINT)"


def _offsets(begin: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, int]]:
    """(from this instant, the zone's offset in seconds) for each stretch of [begin, end)."""
    found: list[tuple[datetime, int]] = []
    moment = begin
    while moment < end or not found:
        offset = int(moment.astimezone(zone).utcoffset().total_seconds())
        if not found or found[-1][1] != offset:
            found.append((moment, offset))
        moment += timedelta(hours=1)
    return found


def local_seconds(column, begin: datetime, end: datetime, zone: ZoneInfo):
    """``column`` as seconds since 1970-01-01 on the site's wall clock, for times in [begin, end)."""
    stretches = _offsets(begin, end, zone)
    if len(stretches) == 1:
        offset = literal(stretches[0][1], BigInteger())
    else:
        offset = case(*((column < stretches[i + 1][0], off) for i, (_at, off) in enumerate(stretches[:-1])),
                      else_=stretches[-1][1])
    return EpochSeconds(column) + offset


def hour_of_day(column, begin: datetime, end: datetime, zone: ZoneInfo):
    """0..23: the hour of the site's day ``column`` falls in."""
    return (local_seconds(column, begin, end, zone) % DAY_S) // HOUR_S


def day_index(column, first_day: date, begin: datetime, end: datetime, zone: ZoneInfo):
    """0, 1, ...: the site-zone day of ``column``, counted from ``first_day``."""
    return (local_seconds(column, begin, end, zone) - (first_day - EPOCH).days * DAY_S) // DAY_S
