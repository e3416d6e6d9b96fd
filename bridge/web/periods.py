"""A report's period as a request gives it: the query's ``from``/``to`` ([from, to), days of the
site's zone), this month when they are missing, by the site's clock of the app
(``app.state.site_clock``, made from ``[site] timezone`` once; tests give it a fixed source).

The API answers a bad day with a 422 (:func:`request_period` raises
:class:`~bridge.site.periods.FilterError`); a page shows this month with the problem written on it
(:func:`page_period`); :func:`quick_periods` are the page's links to this month, last month, this year.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request

from bridge.i18n import N_
from bridge.site.clock import SiteClock
from bridge.site.periods import LAST_MONTH, THIS_MONTH, THIS_YEAR, FilterError, Period, named_period, parse_period

PERIOD_LABELS = {THIS_MONTH: N_("This month"), LAST_MONTH: N_("Last month"), THIS_YEAR: N_("This year")}


def site_clock(app: FastAPI) -> SiteClock:
    clock = getattr(app.state, "site_clock", None)
    if clock is None:
        clock = app.state.site_clock = SiteClock.of(app.state.config)
    return clock


def this_month(app: FastAPI) -> Period:
    return named_period(THIS_MONTH, site_clock(app).today())


def request_period(request: Request) -> Period:
    """[from, to) of the request's query; a missing side is this month's."""
    query = request.query_params
    return parse_period(query.get("from"), query.get("to"), this_month(request.app))


def page_period(request: Request) -> tuple[Period, FilterError | None]:
    """The request's period, or this month and the problem with the query (for the page to say)."""
    try:
        return request_period(request), None
    except FilterError as problem:
        return this_month(request.app), problem


def period_query(period: Period) -> str:
    return urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})


def quick_periods(request: Request, path: str, shown: Period) -> list[dict[str, Any]]:
    """This month, last month, this year: ``label`` (a message id), ``url``, ``chosen``."""
    today = site_clock(request.app).today()
    options = []
    for name, label in PERIOD_LABELS.items():
        period = named_period(name, today)
        options.append({"label": label, "url": f"{path}?{period_query(period)}",
                        "chosen": (period.start, period.end) == (shown.start, shown.end)})
    return options


__all__ = ["PERIOD_LABELS", "page_period", "period_query", "quick_periods", "request_period", "site_clock",
           "this_month"]
