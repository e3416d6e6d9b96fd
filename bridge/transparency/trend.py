"""A unit's trend: its figures per month over the last months, all months in one grouped query per
figure (:func:`bridge.transparency.figures.figures_by_period`), and the line chart of its rates
(the charts contract: a spec the desk's renderer draws, the same figures also as a table)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bridge.i18n import N_
from bridge.site.periods import THIS_MONTH, Period, named_period
from bridge.transparency.figures import UnitFigures, figures_by_period

MAX_MONTHS = 36
MONTH_LABEL = N_("%(year)d-%(month)02d")
# The rates the chart draws: (figure, its label's message id); the table shows every figure.
CHARTED = (("response_rate", N_("Response rate (accepted in time)")),
           ("answered_in_time_rate", N_("Answered within 3 days")))


def last_months(today: date, count: int) -> list[Period]:
    """The ``count`` months up to ``today``'s, the oldest first."""
    months = [named_period(THIS_MONTH, today)]
    while len(months) < count:
        months.append(months[-1].before())
    return months[::-1]


def unit_trend(session: Session, code: str, months: list[Period], zone: ZoneInfo, now: datetime
               ) -> list[tuple[Period, UnitFigures]]:
    """The unit's figures in each of ``months`` (a month with nothing in it: all zero / none)."""
    found = figures_by_period(session, [month.instants(zone) for month in months], now, code)
    return [(month, bucket.get(code) or UnitFigures(code=code, name=code)) for month, bucket in zip(months, found)]


def month_label(month: Period, tr) -> str:
    return tr.gettext(MONTH_LABEL) % {"year": month.start.year, "month": month.start.month}


def trend_chart(trend: list[tuple[Period, UnitFigures]], tr) -> dict[str, Any]:
    """The line chart's spec: the rates in percent per month (null where nothing was decided)."""
    def percent(value: float | None) -> float | None:
        return None if value is None else round(value * 100, 1)

    return {"type": "line", "x": [month_label(month, tr) for month, _ in trend], "unit": "%", "stack": False,
            "series": [{"name": tr.gettext(label), "data": [percent(getattr(f, name)) for _, f in trend]}
                       for name, label in CHARTED]}


__all__ = ["MAX_MONTHS", "last_months", "month_label", "trend_chart", "unit_trend"]
