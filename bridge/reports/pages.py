"""The callback completion log on the desk, ``/desk/reports/callbacks`` (the desk's session and look).

Supervisors and admins see every case; an operator sees the cases they filed; a spokesperson is
refused.  The filters are the URL's query (:func:`bridge.reports.callback_log.parse_filter`), so a
link carries them; ``.../export?format=csv|xlsx`` and ``.../print`` take the same query.  The rows
reload live (htmx) on the desk's events ``case`` and ``callbacks``; each line opens to its case's
timeline (``.../cases/{number}/timeline``, with links to the call's and the callbacks' recordings).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from bridge.cases.timeline import UNIT_KEYS, TO_UNIT_KEY, timeline_view, unit_names
from bridge.db.models import Role, utcnow
from bridge.desk.queries import DeskUser
from bridge.i18n import N_, request_locale, translations
from bridge.reports import callback_log, dashboard
from bridge.reports.api import file_response
from bridge.reports.callback_log import FilterError, LogFilter
from bridge.reports.labels import GRADE_LABELS, OUTCOME_LABELS, RESULT_LABELS
from bridge.reports.viewers import LOG_PATH, current_user, limited_to_viewer
from bridge.web.site import PageLink, add_page_link
from bridge.web.templates import look_of

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
PATH = LOG_PATH
PAGE_ROWS = 500  # the page shows this many; the files carry every row
LOG_LINK = PageLink(area="desk", page="callback-log", path=PATH, label=N_("Callback log"),
                    summary=N_("Every case's path from the call to the caller informed, with filters and exports."),
                    roles=("supervisor", "admin"))
router = APIRouter(prefix=PATH, include_in_schema=False)


def _filter(request: Request) -> tuple[LogFilter, FilterError | None]:
    try:
        return callback_log.parse_filter(request.query_params), None
    except FilterError as problem:
        return LogFilter(), problem


def _labels(_) -> dict[str, Any]:
    return {"outcome_label": lambda o: _(OUTCOME_LABELS.get(o, o)),
            "result_label": lambda r: _(RESULT_LABELS.get(r, r or "")),
            "grade_label": lambda g: _(GRADE_LABELS.get(g, str(g))),
            "outcomes": callback_log.OUTCOMES, "grades": sorted(callback_log.GRADES, reverse=True)}


def _page_values(session, flt: LogFilter, zone, now) -> dict[str, Any]:
    return {"rows": list(callback_log.rows(session, flt, zone, now, limit=PAGE_ROWS)),
            "summary": callback_log.summary(session, flt, zone, now),
            "operators": callback_log.operators(session), "units": callback_log.units(session)}


async def _render(request: Request, user: DeskUser, name: str, **values: Any) -> Response:
    flt, problem = _filter(request)
    shown = limited_to_viewer(flt, user)
    db, zone = request.app.state.db, request.app.state.config.site.zone
    data = await db.run_in_session(_page_values, shown, zone, utcnow(), readonly=True)
    _ = translations(request_locale(request)).gettext
    query = flt.query()
    return request.app.state.report_templates.render(
        request, name, 422 if problem else 200, user=user, page="callback-log", flt=flt, query=query,
        query_string=str(request.url.query), problem=problem, page_rows=PAGE_ROWS,
        supervisor=user.role is not Role.OPERATOR, **_labels(_), **data, **values)


@router.get("")
async def log_page(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    fragment = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "log-rows"
    return await _render(request, user, "reports/_log_rows.html" if fragment else "reports/callbacks.html")


@router.get("/print")
async def print_view(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return await _render(request, user, "reports/print.html")


@router.get("/export")
async def export(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    flt, problem = _filter(request)
    kind = request.query_params.get("format", "csv")
    if problem is not None or kind not in ("csv", "xlsx"):
        _ = translations(request_locale(request)).gettext
        return await _render(request, user, "reports/callbacks.html",
                             export_problem=_("Choose CSV or XLSX, and filters the page accepts."))
    return file_response(request, limited_to_viewer(flt, user), kind, utcnow())


def _timeline(session, number: str, own: int | None, tr) -> dict[str, Any] | None:
    found = callback_log.case_timeline(session, number, own)
    if found is None:
        return None
    codes = [str(e["detail"][k]) for e in found["events"] for k in (*UNIT_KEYS, TO_UNIT_KEY)
             if (e["detail"] or {}).get(k)]
    found["entries"] = timeline_view(found["events"], unit_names(session, codes), tr)
    return found


@router.get("/cases/{number}/timeline")
async def case_timeline(request: Request, number: str, user: DeskUser = Depends(current_user)) -> Response:
    tr = translations(request_locale(request))
    own = user.id if user.role is Role.OPERATOR else None
    found = await request.app.state.db.run_in_session(_timeline, number[:32], own, tr, readonly=True)
    if found is None:
        return Response(tr.gettext("No such case in your log."), status_code=404, media_type="text/plain")
    return request.app.state.report_templates.render(request, "reports/_timeline.html", user=user, number=number,
                                                     **found)


def mount_pages(app: FastAPI) -> None:
    """The dashboard and the log's pages and their menu links, in the desk's look."""
    look = look_of(app, "desk")
    if look is None:
        log.info("reports.no_desk", detail="the desk is not mounted: no report pages")
        return
    app.state.report_templates = look.templates(TEMPLATES)
    app.include_router(dashboard.router)
    app.include_router(router)
    add_page_link(app, dashboard.DASHBOARD_LINK)
    add_page_link(app, LOG_LINK)
