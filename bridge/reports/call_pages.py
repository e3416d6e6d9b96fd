"""The supervisors' call log on the desk, ``/desk/reports/calls`` (the desk's session and look).

Supervisors and admins see every call and every figure; an operator sees the calls they answered
and the headline figures of those calls (and their own row); a spokesperson is refused.  The
filters are the URL's query (:func:`bridge.reports.call_log.parse_call_filter`); the figures of the
filtered period stand above the log, each chart also as a table, with their definitions; the rows
reload live (htmx) on the desk's ``calls`` event; ``.../export`` is the CSV of exactly what is
filtered.  Recordings are the desk's own route (``/desk/recordings/{linkedid}``) and its rules.
"""
from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from bridge.db.models import Role, utcnow
from bridge.desk.queries import DeskUser
from bridge.i18n import N_, request_locale, translations
from bridge.reports import call_log, callback_log
from bridge.reports.api import CSV_TYPE
from bridge.reports.call_charts import charts
from bridge.reports.call_figures import ANSWER_WITHIN_S
from bridge.reports.call_log import CallFilter, FilterError
from bridge.reports.calls_api import own_scope, report_values
from bridge.web.periods import this_month
from bridge.reports.labels import DISPOSITION_LABELS
from bridge.reports.pages import current_user
from bridge.web.site import PageLink, add_page_link

log = structlog.get_logger(__name__)
PATH = "/desk/reports/calls"
PAGE_ROWS = 500  # the page shows this many, newest first; the CSV carries every row
CALLS_LINK = PageLink(area="desk", page="call-log", path=PATH, label=N_("Call log"),
                      summary=N_("Every call with its wait, operator and outcome, and the call figures."),
                      roles=("supervisor", "admin"))
router = APIRouter(prefix=PATH, include_in_schema=False)


def _filter(request: Request, user: DeskUser) -> tuple[CallFilter, FilterError | None]:
    default = this_month(request.app)
    try:
        flt, problem = call_log.parse_call_filter(request.query_params, default), None
    except FilterError as refused:
        flt, problem = CallFilter(default), refused
    return (flt.limited_to(user.id) if user.role is Role.OPERATOR else flt), problem


def _page_values(session, flt: CallFilter, zone, operator: int | None, rows_only: bool) -> dict[str, Any]:
    """The rows; and for the whole page (not a live reload of the rows) the figures and the operators."""
    found = {"rows": list(call_log.rows(session, flt, zone, limit=PAGE_ROWS)), "total": call_log.count(session, flt, zone)}
    if not rows_only:
        found.update(figures=report_values(session, flt.period, zone, operator), operators=callback_log.operators(session))
    return found


@router.get("")
async def call_log_page(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    flt, problem = _filter(request, user)
    db, zone = request.app.state.db, request.app.state.config.site.zone
    fragment = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "call-rows"
    data = await db.run_in_session(_page_values, flt, zone, own_scope(user), fragment, readonly=True)
    _ = translations(request_locale(request)).gettext
    name = "reports/_call_rows.html" if fragment else "reports/calls.html"
    return request.app.state.report_templates.render(
        request, name, 422 if problem else 200, user=user, page="call-log", flt=flt,
        query=flt.query(request.query_params), query_string=str(request.url.query), problem=problem,
        page_rows=PAGE_ROWS, supervisor=user.role is not Role.OPERATOR, within_s=int(ANSWER_WITHIN_S),
        dispositions=call_log.DISPOSITIONS, call_label=lambda d: _(DISPOSITION_LABELS.get(d, d)),
        cause_text=call_log.cause_text, charts=charts(data["figures"], _) if "figures" in data else {}, **data)


@router.get("/export")
async def export(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    flt, problem = _filter(request, user)
    if problem is not None:
        return await call_log_page(request, user)
    zone = request.app.state.config.site.zone
    stamp = utcnow().astimezone(zone).strftime("%Y%m%d-%H%M")
    log.info("reports.call_log_export", user=user.username, start=str(flt.period.start), end=str(flt.period.end))
    return StreamingResponse(call_log.csv_chunks(request.app.state.db, flt, zone), media_type=CSV_TYPE, headers={
        "Content-Disposition": f'attachment; filename="call-log-{stamp}.csv"', "Cache-Control": "no-store"})


def mount_call_pages(app: FastAPI) -> None:
    """The call log's pages and its menu link, in the desk's look (after :func:`mount_pages`)."""
    if getattr(app.state, "report_templates", None) is None:
        log.info("reports.no_desk", detail="the desk is not mounted: no call log page")
        return
    app.include_router(router)
    add_page_link(app, CALLS_LINK)
