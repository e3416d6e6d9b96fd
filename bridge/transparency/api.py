"""``GET /api/v1/reports/units?from=&to=``: the units' figures and what is overdue now (supervisors and
admins: every unit; a spokesperson: their own unit and its overdue cases), and
``GET /api/v1/reports/units/{code}/trend?months=12``: a unit's figures per month."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from bridge.db.models import User
from bridge.site.periods import FilterError
from bridge.transparency.figures import unit_report
from bridge.transparency.public import figures_out
from bridge.web.periods import request_period, site_clock
from bridge.transparency.trend import MAX_MONTHS, last_months, unit_trend
from bridge.transparency.unit_access import VIEWERS, UnitRefused, may_see, unit_scope
from bridge.web.auth import require_role
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute, filter_error_response, request_locale

viewers = require_role(*VIEWERS)
router = APIRouter(prefix="/api/v1", tags=["reports"], route_class=FieldErrorRoute, responses=FIELD_ERRORS_RESPONSE)


class SatisfactionOut(BaseModel):
    graded: int = Field(description="answers of the period whose caller gave a grade on the callback")
    satisfied: int = Field(description="of those, graded 4 or 5")
    rate: float | None = Field(description="satisfied / graded (满意率); null when none was graded")


class UnitFiguresOut(BaseModel):
    code: str
    name: str
    posts_received: int = Field(description="posts that reached the unit: posted to it, or forwarded to it")
    forwards_received: int
    forwards_made: int
    follow_ups: int
    follow_ups_answered: int
    answered: int
    answer_base: int = Field(description="posts received and not forwarded on (the answer rate's base)")
    answer_rate: float | None
    accepted_in_time: int
    acceptances_decided: int
    response_rate: float | None = Field(description="响应率: accepted (or forwarded) within the limit, of those settled")
    answered_in_time: int
    answers_decided: int
    answered_in_time_rate: float | None = Field(description="answered by the deadline (3 days), of those settled")
    median_acceptance_s: float | None
    median_answer_s: float | None
    overdue_now: int
    satisfaction: SatisfactionOut


class OverdueOut(BaseModel):
    number: str
    unit: str
    state: str
    step: str = Field(description="the step owed: accept or answer")
    deadline_at: datetime = Field(description="in the site's zone")
    overdue_s: float


class DeletionsOut(BaseModel):
    total: int = Field(description="always 0 on this platform; computed from the data")
    numbers_issued: int
    cases_present: int
    numbers_missing: int
    board_posts_without_case: int


class UnitReportOut(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    zone: str
    computed_at: datetime
    units: list[UnitFiguresOut]
    overdue: list[OverdueOut] = Field(description="every case past its deadline now, the longest overdue first")
    deletions: DeletionsOut


def _scope(session, user: User) -> str | None:
    try:
        return unit_scope(session, user)
    except UnitRefused:
        raise HTTPException(403, "a spokesperson without a unit sees no unit's figures") from None


@router.get("/reports/units", response_model=UnitReportOut, response_model_by_alias=True,
            summary="The units' figures for [from, to), ranked, and every case overdue now")
async def units_report(
    request: Request,
    user: Annotated[User, Depends(viewers)],
    start: Annotated[str | None, Query(alias="from", max_length=40,
                                       description="first day, YYYY-MM-DD in the site's zone (default: this month's first)")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40,
                                     description="the day after the last, YYYY-MM-DD, excluded (default: next month's first)")] = None,
):
    try:
        period = request_period(request)  # the from/to declared above (the schema, their bounds)
    except FilterError as problem:
        return filter_error_response(problem, request_locale(request))
    db, zone = request.app.state.db, request.app.state.config.site.zone
    now = site_clock(request.app).now()
    begin, finish = period.instants(zone)

    def work():
        with db.session(readonly=True) as session:
            return _scope(session, user), unit_report(session, begin, finish, now, with_overdue=True)

    scope, report = await db.run(work)
    units = [figures_out(f) for f in report.units if may_see(scope, f.code)]
    overdue = [{"number": o.number, "unit": o.unit, "state": o.state, "step": o.step,
                "deadline_at": o.deadline_at.astimezone(zone), "overdue_s": round((now - o.deadline_at).total_seconds(), 1)}
               for o in report.overdue if may_see(scope, o.unit)]
    d = report.deletions
    return UnitReportOut.model_validate({
        "from": period.start, "to": period.end, "zone": zone.key, "computed_at": now.astimezone(zone), "units": units,
        "overdue": overdue, "deletions": {"total": d.total, "numbers_issued": d.numbers_issued,
                                          "cases_present": d.cases_present, "numbers_missing": d.numbers_missing,
                                          "board_posts_without_case": d.board_posts_without_case}})


class MonthOut(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    figures: UnitFiguresOut = Field(description="the unit's figures for the steps begun in the month "
                                                "(overdue_now: 0, it is today's, see the units report)")


class TrendOut(BaseModel):
    code: str
    zone: str
    computed_at: datetime
    months: list[MonthOut] = Field(description="the oldest month first, up to this month")


@router.get("/reports/units/{code}/trend", response_model=TrendOut, response_model_by_alias=True,
            summary="A unit's figures per month over the last months (one grouped query for all of them)")
async def unit_trend_report(
    request: Request, code: str, user: Annotated[User, Depends(viewers)],
    months: Annotated[int, Query(ge=1, le=MAX_MONTHS, description="how many months, this one included")] = 12,
):
    db, zone = request.app.state.db, request.app.state.config.site.zone
    now = site_clock(request.app).now()
    periods = last_months(now.astimezone(zone).date(), months)

    def work():
        with db.session(readonly=True) as session:
            if not may_see(_scope(session, user), code):
                raise HTTPException(403, "a spokesperson sees their own unit's figures only")
            return unit_trend(session, code, periods, zone, now)

    trend = await db.run(work)
    return TrendOut.model_validate({
        "code": code, "zone": zone.key, "computed_at": now.astimezone(zone),
        "months": [{"from": month.start, "to": month.end, "figures": figures_out(figures)} for month, figures in trend]})
