"""The reports API (API-token auth, supervisors and admins).

``GET /api/v1/reports/callbacks?from=&to=&operator=&unit=&outcome=&satisfaction=&overdue=&waiting_hours=&format=``:
the callback completion log (:mod:`bridge.reports.callback_log`), one row per case filed in
``[from, to)`` (days in the site's zone), as JSON with the summary figures, or the same rows as a
CSV or XLSX file (streamed).  A filter that cannot be used answers 422 naming the parameter and
what to send.  Times in JSON are UTC (ISO 8601 with ``+00:00``).
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from bridge.db.models import Role, User, utcnow
from bridge.reports import callback_log, exports
from bridge.reports.callback_log import LogFilter
from bridge.site.periods import FilterError
from bridge.web.auth import require_role
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute, filter_error_response, request_locale

supervisors = require_role(Role.SUPERVISOR, Role.ADMIN)
MAX_JSON_ROWS = 1000  # more: ask for the CSV or XLSX file, which streams (a month holds tens of thousands)
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Format = Enum("Format", {"json": "json", "csv": "csv", "xlsx": "xlsx"}, type=str)
Outcome = Enum("Outcome", {name: name for name in callback_log.OUTCOMES}, type=str)


class AttemptOut(BaseModel):
    at: datetime
    operator: str | None
    result: str | None  # null while dialling
    outcome: str | None


class CallbackRowOut(BaseModel):
    number: str
    title: str
    operator: str | None
    unit: str
    call_at: datetime | None
    filed_at: datetime
    posted_at: datetime | None
    accepted_at: datetime | None
    forwarded_to: list[str]
    answered_at: datetime | None
    attempts: list[AttemptOut]
    outcome: Outcome
    informed_at: datetime | None
    answer_to_informed_s: float | None
    satisfaction: int | None
    deadline_at: datetime | None


class CallbackRatesOut(BaseModel):
    with_callback: int  # cases with an answer callback
    attempted: int  # of them, dialled at least once
    informed: int  # of them, the caller informed
    completion_rate: float | None  # informed / with_callback
    attempts_per_completed: float | None  # attempts on the informing tasks / informed
    graded: int  # cases with a satisfaction grade
    satisfaction_rate: float | None  # 满意率: graded 4 or 5 / graded


class OperatorFiguresOut(CallbackRatesOut):
    operator_id: int | None  # who filed the cases
    operator: str | None
    unreachable: int


class SummaryOut(CallbackRatesOut):
    cases: int
    outcomes: dict[str, int]
    median_answer_to_informed_s: float | None
    p90_answer_to_informed_s: float | None
    satisfaction: dict[str, int]
    per_operator: list[OperatorFiguresOut]


class CallbackReportOut(BaseModel):
    rows: list[CallbackRowOut]
    truncated: bool  # more rows than MAX_JSON_ROWS matched: the files carry them all
    summary: SummaryOut


router = APIRouter(prefix="/api/v1/reports", tags=["reports"], route_class=FieldErrorRoute,
                   responses=FIELD_ERRORS_RESPONSE)

TextParam = Annotated[str | None, Query(max_length=40)]


def _row_out(row: callback_log.LogRow) -> dict:
    return {key: row.values.get(key) for key in (
        "number", "title", "operator", "unit", "call_at", "filed_at", "posted_at", "accepted_at", "answered_at",
        "outcome", "informed_at", "answer_to_informed_s", "satisfaction", "deadline_at")} | {
        "forwarded_to": row.forwarded_to,
        "attempts": [{key: a[key] for key in ("at", "operator", "result", "outcome")} for a in row.attempts]}


def _report(session, flt: LogFilter, zone, now: datetime) -> dict:
    found = [_row_out(row) for row in callback_log.rows(session, flt, zone, now, limit=MAX_JSON_ROWS + 1)]
    return {"rows": found[:MAX_JSON_ROWS], "truncated": len(found) > MAX_JSON_ROWS,
            "summary": callback_log.summary(session, flt, zone, now)}


def file_response(request: Request, flt: LogFilter, kind: str, now: datetime) -> Response:
    """The filtered log as a streamed CSV or XLSX download."""
    db, zone = request.app.state.db, request.app.state.config.site.zone
    stamp = now.astimezone(zone).strftime("%Y%m%d-%H%M")
    if kind == "csv":
        return StreamingResponse(exports.csv_chunks(db, flt, zone, now), media_type=CSV_TYPE, headers={
            "Content-Disposition": f'attachment; filename="callback-log-{stamp}.csv"', "Cache-Control": "no-store"})
    return XlsxResponse(db, flt, zone, now, stamp)


class XlsxResponse(StreamingResponse):
    """The workbook is written in a worker thread (constant memory, to a temporary file), then streamed."""

    def __init__(self, db, flt: LogFilter, zone, now: datetime, stamp: str) -> None:
        self._work = (db, flt, zone, now)
        super().__init__(iter(()), media_type=XLSX_TYPE, headers={
            "Content-Disposition": f'attachment; filename="callback-log-{stamp}.xlsx"', "Cache-Control": "no-store"})

    async def __call__(self, scope, receive, send) -> None:
        from starlette.concurrency import run_in_threadpool

        path = await run_in_threadpool(exports.write_xlsx, *self._work)
        self.body_iterator = _threaded(exports.file_chunks(path))
        await super().__call__(scope, receive, send)


async def _threaded(chunks):
    from starlette.concurrency import iterate_in_threadpool

    async for chunk in iterate_in_threadpool(chunks):
        yield chunk


FILE_CONTENT = {200: {"description": "the report (JSON), or the file of its rows (CSV with a BOM, XLSX)",
                      "content": {"text/csv": {}, XLSX_TYPE: {}}}}


@router.get("/callbacks", response_model=CallbackReportOut, responses=FILE_CONTENT,
            summary="The callback completion log: one row per case with its callback path, and the figures")
async def callbacks_report(
    request: Request,
    user: Annotated[User, Depends(supervisors)],
    from_: Annotated[str | None, Query(alias="from", max_length=10,
                                       description="first day, YYYY-MM-DD in the site's zone (included)")] = None,
    to: Annotated[str | None, Query(max_length=10, description="the day after the last, YYYY-MM-DD (not included)")] = None,
    operator: Annotated[str | None, Query(max_length=12, description="the id of the user who filed the case")] = None,
    unit: TextParam = None,
    outcome: Annotated[str | None, Query(max_length=20, description="one of " + ", ".join(callback_log.OUTCOMES))] = None,
    satisfaction: Annotated[str | None, Query(max_length=4, description="a grade 1 to 5, or none")] = None,
    overdue: Annotated[str | None, Query(max_length=5, description="1: only cases overdue now")] = None,
    waiting_hours: Annotated[str | None, Query(max_length=10, description="answered, the caller not informed "
                                                                           "for more than this many hours")] = None,
    format: Format = Format.json,
):
    params = {"from": from_, "to": to, "operator": operator, "unit": unit, "outcome": outcome,
              "satisfaction": satisfaction, "overdue": overdue, "waiting_hours": waiting_hours}
    try:
        flt = callback_log.parse_filter({k: v for k, v in params.items() if v is not None})
    except FilterError as problem:
        return filter_error_response(problem, request_locale(request))
    now = utcnow()
    if format.value != "json":
        return file_response(request, flt, format.value, now)
    db, zone = request.app.state.db, request.app.state.config.site.zone
    return await db.run_in_session(_report, flt, zone, now, readonly=True)


__all__ = ["file_response", "router"]
