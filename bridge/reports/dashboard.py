"""The supervisors' reports dashboard, ``/desk/reports``: the callback figures of a period
(``from``/``to`` in the URL, this month by default) beside the period before it
(:meth:`bridge.site.periods.Period.before`), each with its definition, charts that are also tables,
the figures per operator, and links to the reports' pages that exist on this site.

Operators see their own figures only (the cases they filed: their row, their cases); spokespeople
are refused (:mod:`bridge.reports.viewers`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bridge.db.models import Role, utcnow
from bridge.desk.queries import DeskUser
from bridge.i18n import N_, request_locale, translations
from bridge.reports import callback_log
from bridge.reports.callback_log import LogFilter
from bridge.reports.labels import GRADE_LABELS, OUTCOME_LABELS
from bridge.reports.viewers import LOG_PATH, current_user, limited_to_viewer
from bridge.web.periods import page_period, period_query, quick_periods
from bridge.web.charts import chart_spec, percent
from bridge.web.site import PageLink, page_links

PATH = "/desk/reports"
FRAGMENT = "dashboard-figures"  # the htmx target the live reload asks for
DASHBOARD_LINK = PageLink(area="desk", page="reports", path=PATH, label=N_("Reports"),
                          summary=N_("The callback figures of a period against the period before, per operator, "
                                     "with the links to every report."),
                          roles=("supervisor", "admin", "operator"))
CHARTED_OUTCOMES = ("informed", "follow_up", "unreachable", "do_not_call", "wrong_number", "pending")
router = APIRouter(prefix=PATH, include_in_schema=False)


@dataclass(frozen=True)
class Headline:
    """A figure of the comparison table: ``kind`` says how it is written (rate, seconds, count, ratio)."""

    key: str
    label: str  # message ids
    definition: str
    kind: str


HEADLINES = (
    Headline("completion_rate", N_("Completion rate"), N_("Cases whose caller was informed of the latest answer, "
             "among the cases with an answer callback."), "rate"),
    Headline("median_answer_to_informed_s", N_("Answer to caller informed, median"), N_(
        "From the unit's answer to the end of the callback that informed the caller: half the callbacks took "
        "less."), "seconds"),
    Headline("p90_answer_to_informed_s", N_("Answer to caller informed, 90th percentile"), N_(
        "Nine callbacks in ten informed the caller within this time of the answer."), "seconds"),
    Headline("attempts_per_completed", N_("Attempts per completed callback"), N_(
        "The calls placed for the callbacks that informed the caller, divided by those callbacks."), "ratio"),
    Headline("unreachable", N_("Not reached"), N_("Callbacks that made every attempt without reaching the caller, "
             "or whose number needs checking."), "count"),
    Headline("do_not_call", N_("Do not call again"), N_("Callers who asked not to be called again."), "count"),
    Headline("satisfaction_rate", N_("Satisfaction rate"), N_(
        "Cases graded satisfied or very satisfied, among the cases graded."), "rate"),
)


def _value(summary: dict[str, Any], key: str) -> float | None:
    return summary["outcomes"][key] if key in summary["outcomes"] else summary[key]


def headlines(current: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    """Each headline figure this period, the period before, and the change (null if either is)."""
    found = []
    for figure in HEADLINES:
        value, previous = _value(current, figure.key), _value(before, figure.key)
        change = value - previous if value is not None and previous is not None else None
        found.append({"figure": figure, "value": value, "previous": previous, "change": change})
    return found


def charts(current: dict[str, Any], before: dict[str, Any], _) -> dict[str, dict[str, Any]]:
    """The dashboard's chart specs, labels in the page's language."""
    periods = (_("This period"), _("Period before"))
    operators = current["per_operator"]
    return {
        "rates": chart_spec("bar", [_("Completion rate"), _("Satisfaction rate")], {
            name: [percent(s["completion_rate"]), percent(s["satisfaction_rate"])]
            for name, s in zip(periods, (current, before), strict=True)}, unit="%"),
        "outcomes": chart_spec("bar", [_(OUTCOME_LABELS[o]) for o in CHARTED_OUTCOMES], {
            name: [s["outcomes"][o] for o in CHARTED_OUTCOMES] for name, s in zip(periods, (current, before),
                                                                                     strict=True)}),
        "satisfaction": chart_spec("pie", [_(GRADE_LABELS[g]) for g in sorted(GRADE_LABELS, reverse=True)], {
            _("Cases"): [current["satisfaction"][str(g)] for g in sorted(GRADE_LABELS, reverse=True)]}),
        "operators": chart_spec("bar", [o["operator"] or "–" for o in operators], {
            _("Completion rate"): [percent(o["completion_rate"]) for o in operators],
            _("Satisfaction rate"): [percent(o["satisfaction_rate"]) for o in operators]}, unit="%"),
    }


def report_links(request: Request, user: DeskUser, query: str) -> list[dict[str, str]]:
    """The other report pages mounted on this site that ``user`` may open (the menu's registry,
    read now: a page another capability did not mount is not linked), for the same period."""
    return [{"path": f"{link.path}?{query}", "label": link.label, "summary": link.summary}
            for link in page_links(request.app, "desk")
            if link.path.startswith(PATH + "/") and link.path != LOG_PATH
            and (not link.roles or user.role.value in link.roles)]


def _summaries(session, filters: list[LogFilter], zone, now) -> list[dict[str, Any]]:
    return [callback_log.summary(session, flt, zone, now) for flt in filters]


@router.get("")
async def dashboard(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    zone = request.app.state.config.site.zone
    period, problem = page_period(request)
    previous = period.before()
    filters = [limited_to_viewer(LogFilter(start=p.start, end=p.end), user) for p in (period, previous)]
    current, before = await request.app.state.db.run_in_session(_summaries, filters, zone, utcnow(), readonly=True)
    _ = translations(request_locale(request)).gettext
    query = period_query(period)
    fragment = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == FRAGMENT
    return request.app.state.report_templates.render(
        request, "reports/_dashboard_figures.html" if fragment else "reports/dashboard.html", 422 if problem else 200,
        user=user, page="reports", problem=problem, period=period, previous=previous,
        last_day=lambda p: p.end - timedelta(days=1), query=query, current=current, before=before,
        headlines=headlines(current, before), charts=charts(current, before, _), own_only=user.role is Role.OPERATOR,
        quick=quick_periods(request, PATH, period),
        log_path=f"{LOG_PATH}?{query}", report_links=report_links(request, user, query))
