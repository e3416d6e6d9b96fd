"""``GET /api/v1/reports/calls?from=&to=``: the call figures of [from, to) (days of the site's zone,
default this month) and the headline figures of the period before (API token).

Supervisors and admins get every figure; an operator gets the headline figures of the calls they
answered (and the phone cases they filed) and their own per-operator row, nothing else; a
spokesperson is refused (403).  A bad day answers 422 naming it.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from bridge.db.models import Role, User
from bridge.reports.call_figures import call_report
from bridge.site.periods import FilterError, Period
from bridge.web.auth import require_role
from bridge.web.periods import request_period
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute, filter_error_response, request_locale

hotline_staff = require_role(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
router = APIRouter(prefix="/api/v1/reports", tags=["reports"], route_class=FieldErrorRoute,
                   responses=FIELD_ERRORS_RESPONSE)
RATE = " (a share 0..1; null when the base is 0)"


class HeadlineOut(BaseModel):
    calls: int = Field(description="calls that arrived in the period, every disposition")
    by_disposition: dict[str, int] = Field(description="calls per disposition (answered, abandoned, hung_up_in_menu, "
                                                       "after_hours_message, status_line, failed, in_progress)")
    reached_queue: int = Field(description="calls that reached the operator queue: answered + abandoned in the queue")
    reached_menu: int = Field(description="calls that reached the menu in office hours: answered + abandoned + "
                                          "hung up in the menu + status line")
    answered_within_15s: int = Field(description="answered calls whose queue wait was at most 15.0 s (GB/T 33358)")
    answered_within_15s_rate: float | None = Field(description="answered_within_15s / reached_queue" + RATE)
    abandoned_in_queue_rate: float | None = Field(description="abandoned in the queue / reached_queue" + RATE)
    hung_up_in_menu_rate: float | None = Field(description="hung up in the menu / reached_menu" + RATE)
    mean_queue_wait_s: float | None = Field(description="mean queue wait of the answered calls, seconds")
    p90_queue_wait_s: float | None = Field(description="90th percentile of the answered calls' queue wait, seconds "
                                                       "(continuous, linear interpolation: percentile_cont)")
    after_hours_messages: int = Field(description="calls that left an after-hours message")
    status_line_calls: int = Field(description="calls that chose the case-status line in the menu")
    failed_calls: int = Field(description="technical failures (see failures)")
    cases_filed: int = Field(description="cases filed from the phone channel in the period")
    calls_per_case: float | None = Field(description="calls answered / cases_filed (null when no case was filed)")


class HourOut(BaseModel):
    hour: int = Field(description="hour of the day in the site's zone, 0..23")
    calls: int
    by_disposition: dict[str, int]


class DayOut(BaseModel):
    day: date = Field(description="a day of the period in the site's zone")
    calls: int
    by_disposition: dict[str, int]


class FailureOut(BaseModel):
    cause: int | None = Field(description="Asterisk's hangup cause code (Q.850)")
    text: str = Field(description="Asterisk's text of the cause")
    calls: int


class OperatorOut(BaseModel):
    operator_id: int
    operator: str
    answered: int = Field(description="calls the operator answered in the period")
    mean_queue_wait_s: float | None = Field(description="mean queue wait of those calls, seconds")
    p90_queue_wait_s: float | None = Field(description="90th percentile of those calls' queue wait, seconds")
    mean_talk_s: float | None = Field(description="mean talk time of those calls, seconds")
    cases_filed: int = Field(description="phone cases the operator filed in the period")
    answered_within_15s_rate: float | None = Field(description="of the operator's answered calls, the share "
                                                               "answered within 15 s" + RATE)


class CallReportOut(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from", description="first day (included)")
    to: date = Field(description="the day after the last (not included)")
    zone: str
    scope: str = Field(description="all: every call; own: the calls the token's operator answered")
    before_from: date = Field(description="the period compared: the month before a month, else as many days before")
    before_to: date
    headline: HeadlineOut
    before: HeadlineOut = Field(description="the same headline figures for the period before")
    by_hour: list[HourOut] = Field(description="volume by hour of the day (supervisors and admins)")
    by_day: list[DayOut] = Field(description="volume by day (supervisors and admins)")
    failures: list[FailureOut] = Field(description="failed calls by hangup cause (supervisors and admins)")
    operators: list[OperatorOut]


def own_scope(user) -> int | None:
    """An operator's figures are their own calls'; a supervisor's and an admin's everyone's."""
    return user.id if user.role is Role.OPERATOR else None


def report_values(session, period: Period, zone, operator: int | None) -> dict:
    """The report as the API and the page show it (an operator: headline figures and own row only)."""
    found = call_report(session, period, zone, operator)
    days = period.days()
    found["by_hour"] = [{"hour": h, "calls": sum(row.values()), "by_disposition": row}
                        for h, row in enumerate(found["by_hour"])]
    found["by_day"] = [{"day": days[i], "calls": sum(row.values()), "by_disposition": row}
                       for i, row in enumerate(found["by_day"])]
    before = period.before()
    return {**found, "from": period.start, "to": period.end, "zone": zone.key, "scope": "own" if operator else "all",
            "before_from": before.start, "before_to": before.end}


@router.get("/calls", response_model=CallReportOut, response_model_by_alias=True,
            summary="The call figures of [from, to), with the headline figures of the period before")
async def calls_report(
    request: Request,
    user: Annotated[User, Depends(hotline_staff)],
    start: Annotated[str | None, Query(alias="from", max_length=40, description="first day, YYYY-MM-DD in the "
                                       "site's zone (default: this month's first)")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40, description="the day after the last, YYYY-MM-DD, "
                                     "excluded (default: next month's first)")] = None,
):
    try:
        period = request_period(request)  # the from/to declared above (the schema, their bounds)
    except FilterError as problem:
        return filter_error_response(problem, request_locale(request))
    db, zone = request.app.state.db, request.app.state.config.site.zone
    values = await db.run_in_session(report_values, period, zone, own_scope(user), readonly=True)
    return CallReportOut.model_validate(values)


__all__ = ["report_values", "router"]
