"""A continuous percentile per group, in SQL: ``percentile_cont`` on PostgreSQL; on SQLite the same
linear interpolation between the two ranked rows around ``1 + f * (n - 1)`` of each group (the
definition :func:`bridge.reports.callback_log.percentiles` uses for one set of values)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session


def inline_percentile(session: Session, fraction: float, column):
    """On PostgreSQL, ``percentile_cont`` as an aggregate to put beside the others of one SELECT
    (one scan instead of two); None on SQLite (use :func:`percentile_by_group`)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.percentile_cont(fraction).within_group(column)
    return None


def percentile_by_group(session: Session, group, column, fraction: float, *where) -> dict[Any, float]:
    """{group value: the ``fraction`` percentile of ``column``} over the rows matching ``where``
    (null values left out; a group with none is absent)."""
    conditions = (*where, column.is_not(None))
    if session.get_bind().dialect.name == "postgresql":
        query = (select(group, func.percentile_cont(fraction).within_group(column))
                 .where(*conditions).group_by(group))
        return {key: float(value) for key, value in session.execute(query)}
    ranked = select(group.label("g"), column.label("v"),
                    func.row_number().over(partition_by=group, order_by=column).label("r"),
                    func.count().over(partition_by=group).label("n")).where(*conditions).subquery("ranked")
    position = 1 + fraction * (ranked.c.n - 1)
    low = cast(position, Integer)  # positive: rounded down
    below = func.max(case((ranked.c.r == low, ranked.c.v)))
    above = func.max(case((ranked.c.r == func.min(low + 1, ranked.c.n), ranked.c.v)))
    query = select(ranked.c.g, below + func.max(position - low) * (above - below)).group_by(ranked.c.g)
    return {key: float(value) for key, value in session.execute(query)}
