"""The supervisors' units pages on the desk: ``/desk/reports/units`` (what each unit owes now, with
live countdowns, and the units' figures for a period against the one before, ranked) and
``/desk/reports/units/{code}`` (one unit: its figures, its 12-month trend, its open posts).

Supervisors and admins see every unit; a spokesperson is sent to their own unit's page and refused
the others (403); operators are refused.  The owed list reloads (htmx) on the desk's ``case`` events
and every minute; the countdowns tick in the page."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from bridge.db.models import Department
from bridge.desk.queries import desk_user
from bridge.forum.service import site_deadlines
from bridge.i18n import N_, request_locale, translations
from bridge.site.periods import Period
from bridge.transparency.countdown import owed_view
from bridge.transparency.figures import unit_figures
from bridge.transparency.owed import owed_cases, unit_counts
from bridge.transparency.pages import duration_text, figure_definitions, percent
from bridge.web.periods import page_period, quick_periods, site_clock
from bridge.transparency.trend import last_months, month_label, trend_chart, unit_trend
from bridge.transparency.unit_access import VIEWERS, UnitRefused, may_see, unit_scope
from bridge.web.sessions import RoleRefused, page_user
from bridge.web.site import PageLink, add_page_link
from bridge.web.templates import look_of

log = structlog.get_logger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
PATH = "/desk/reports/units"
TREND_MONTHS = 12
UNITS_LINK = PageLink(area="desk", page="units-report", path=PATH, label=N_("Units report"),
                      summary=N_("What each unit owes now, overdue first, and the units' figures, ranked."),
                      roles=("supervisor", "admin"))
router = APIRouter(prefix=PATH, include_in_schema=False)


def _owed(session, scope: str | None, now, policy, zone, tr) -> dict[str, Any]:
    views = [owed_view(case, now, policy=policy, zone=zone, tr=tr) for case in owed_cases(session, scope)]
    counts = unit_counts(session, now, scope)
    by_unit = {owes.code: [] for owes in counts}
    for view in views:
        by_unit.setdefault(view["unit_code"], []).append(view)
    return {"owes": counts, "owed_by_unit": by_unit}


def _figures(session, scope: str | None, period: Period, zone, now) -> dict[str, Any]:
    ranked = unit_figures(session, *period.instants(zone), now)
    before = {f.code: f for f in unit_figures(session, *period.before().instants(zone), now)}
    return {"figures": [f for f in ranked if may_see(scope, f.code)], "before": before,
            "ranks": {f.code: rank for rank, f in enumerate(ranked, start=1)}}


def _units_values(session, scope, period, zone, now, policy, tr, fragment: bool) -> dict[str, Any]:
    values = _owed(session, scope, now, policy, zone, tr)
    return values if fragment else {**values, **_figures(session, scope, period, zone, now)}


def _unit_values(session, code: str, period, zone, now, policy, tr, fragment: bool) -> dict[str, Any] | None:
    name = session.scalar(select(Department.name).where(Department.code == code))
    if name is None:
        return None
    if fragment:
        return _owed(session, code, now, policy, zone, tr)
    months = last_months(now.astimezone(zone).date(), TREND_MONTHS)
    trend = unit_trend(session, code, months, zone, now)
    return {"unit": {"code": code, "name": name}, **_owed(session, code, now, policy, zone, tr),
            **_figures(session, code, period, zone, now),
            "trend": [(month_label(month, tr), figures) for month, figures in trend],
            "chart": trend_chart(trend, tr)}


async def _viewer(request: Request):
    user = await page_user(request, VIEWERS)
    try:
        scope = await request.app.state.db.run_in_session(unit_scope, user, readonly=True)
    except UnitRefused:
        raise RoleRefused() from None
    return desk_user(user, request.session), scope


def _render(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    tr = translations(request_locale(request))
    return request.app.state.units_templates.render(
        request, name, status, page="units-report", percent=percent,
        duration=lambda s: duration_text(s, tr.gettext), definitions=figure_definitions(request_locale(request)),
        **values)


def _is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "units-owed"


@router.get("")
async def units_page(request: Request) -> Response:
    user, scope = await _viewer(request)
    if scope is not None:  # a spokesperson: their own unit's page, with the same period
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{PATH}/{quote(scope)}{query}", status_code=303)
    period, problem = page_period(request)
    tr = translations(request_locale(request))
    app = request.app
    fragment = _is_fragment(request)
    data = await app.state.db.run_in_session(
        _units_values, scope, period, app.state.config.site.zone, site_clock(app).now(), site_deadlines(app), tr,
        fragment, readonly=True)
    name = "units/_owed.html" if fragment else "units/units.html"
    return _render(request, name, 422 if problem else 200, user=user, period=period, problem=problem,
                   options=quick_periods(request, PATH, period), query=str(request.url.query), **data)


@router.get("/{code}")
async def unit_page(request: Request, code: str) -> Response:
    user, scope = await _viewer(request)
    if not may_see(scope, code):
        raise RoleRefused()
    period, problem = page_period(request)
    tr = translations(request_locale(request))
    app = request.app
    fragment = _is_fragment(request)
    data = await app.state.db.run_in_session(
        _unit_values, code[:32], period, app.state.config.site.zone, site_clock(app).now(), site_deadlines(app), tr,
        fragment, readonly=True)
    if data is None:
        return Response(tr.gettext("No such unit."), status_code=404, media_type="text/plain")
    path = f"{PATH}/{quote(code)}"
    return _render(request, "units/_owed.html" if fragment else "units/unit.html", 422 if problem else 200, user=user, period=period, problem=problem,
                   options=quick_periods(request, path, period), query=str(request.url.query),
                   supervisor=scope is None, **data)


def mount_pages(app: FastAPI) -> None:
    """The units pages and their menu link (supervisors, admins), in the desk's look."""
    look = look_of(app, "desk")
    if look is None:
        log.info("transparency.no_desk", detail="the desk is not mounted: no units pages")
        return
    app.state.units_templates = look.templates(TEMPLATES)
    app.include_router(router)
    add_page_link(app, UNITS_LINK)
