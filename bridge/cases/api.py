"""The cases JSON API (API-token auth; operators, supervisors and admins).

- ``POST /api/v1/cases``: file a case; 201 with the case read back.
- ``GET /api/v1/cases/{number}``: one case with its ``timeline`` (each entry's ``label`` in the
  request's language, and the ``text`` of an answer, a forward note or a follow-up).
- ``GET /api/v1/cases?mine=&state=&department=&q=&overdue=&today=&page=&per_page=``: the list.

A validation error answers 422 with one entry per problem::

    {"detail": [{"field": "caller_phone", "message": "…", "code": "phone_invalid"}]}

in Chinese, or in English when ``Accept-Language`` prefers ``en`` (default: the
site's ``[site] locale``).  FastAPI's own request-validation errors (wrong JSON
types, unknown fields, bad query parameters) take the same shape on these
routes through the shared :class:`bridge.web.errors.FieldErrorRoute`.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from bridge.cases import service
from bridge.cases.timeline import timeline_view
from bridge.cases.validation import (
    BEST_TIME_CODES,
    DEPARTMENT_MAX,
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    FULL_NAME_MAX,
    LINKEDID_MAX,
    LOCATION_MAX,
    NOT_BEFORE_MAX_DAYS,
    OPERATOR_NOTES_MAX,
    PHONE_MAX,
    SURNAME_MAX,
    SURNAME_PATTERN,
    TITLE_MAX,
    CaseValidationError,
    FieldError,
)
from bridge.config import UNIT_CODE_PATTERN
from bridge.db.models import CaseChannel, CaseState, Honorific, Role, User
from bridge.i18n import header_locale, translations
from bridge.live import LiveEvent
from bridge.web.auth import require_role
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute
from bridge.web.paging import PageNumber

# ----------------------------------------------------------------------- models


# What the case rules (bridge.cases.validation) enforce, stated in the OpenAPI document so that a
# client (or a generated request) can get it right the first time.  Pydantic does not enforce these
# itself: the rules do, reporting every problem at once with its own message (422, one entry each).
TRIMMED = r"^\S(?:[\s\S]*\S)?$"  # the rules trim text; a value without outer spaces is measured as sent
PHONE_SHAPE = (r"^(?:\+86[ -]?)?(?:1[3-9][0-9](?:[ -]?[0-9]{4}){2}"
               r"|0[1-9][0-9]{1,2}[ -]?[1-9][0-9]{6,7})$")
REQUIRED = ["caller_surname", "caller_honorific", "caller_phone", "department", "title", "description"]


def _text(max_length: int, *, min_length: int = 1, pattern: str = TRIMMED, required: bool = False) -> WithJsonSchema:
    text = {"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": pattern}
    return WithJsonSchema(text if required else {"anyOf": [text, {"type": "null"}]})


def _choice(values: list[str], *, required: bool = False) -> WithJsonSchema:
    choice = {"type": "string", "enum": values}
    return WithJsonSchema(choice if required else {"anyOf": [choice, {"type": "null"}]})


def _date() -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]})


EXAMPLE = {
    "call_linkedid": "1764133200.42", "caller_surname": "朱", "caller_honorific": "女士",
    "caller_full_name": "朱小红", "caller_phone": "139 1234 5678", "department": "CITY-LJQ",
    "location": "东港三路与百灵路交叉口", "title": "路口垃圾堆积无人清理",
    "description": "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。",
    "callback_wanted": True, "sms_consent": False, "best_time": "afternoon",
}


def _state_required(schema: dict) -> None:
    """The rules' required fields are required in the document (and have no default there)."""
    schema["required"] = REQUIRED
    schema["examples"] = [EXAMPLE]
    for name in REQUIRED:
        schema["properties"][name].pop("default", None)


class CaseIn(BaseModel):
    """A case as written by the desk or an API client. Text fields are trimmed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: _state_required(schema))

    call_linkedid: Annotated[str | None, _text(LINKEDID_MAX)] = Field(
        None, description="the call (Asterisk linkedid) this case comes from; needs the channel phone")
    channel: Annotated[str | None, _choice([c.value for c in CaseChannel])] = Field(
        None, description="phone (default), walk_in, message or email")
    caller_surname: Annotated[str | None, _text(SURNAME_MAX, pattern=SURNAME_PATTERN, required=True)] = Field(
        None, description="1-2 Chinese characters, or a Latin surname (public)")
    caller_honorific: Annotated[str | None, _choice([h.value for h in Honorific], required=True)] = Field(
        None, description="女士 or 先生 (public)")
    caller_full_name: Annotated[str | None, _text(FULL_NAME_MAX)] = Field(
        None, description="private; must contain the surname")
    caller_phone: Annotated[str | None, _text(PHONE_MAX, pattern=PHONE_SHAPE, required=True)] = Field(
        None, description="private; a Chinese mobile or fixed line with area code, written as the pattern shows "
                          "(the number itself is checked too); stored and read back in E.164 (+8613912345678)")
    caller_phone_alt: Annotated[str | None, _text(PHONE_MAX, pattern=PHONE_SHAPE)] = Field(
        None, description="private; optional second number, not the same as caller_phone")
    department: Annotated[str | None, _text(DEPARTMENT_MAX, pattern=UNIT_CODE_PATTERN.pattern, required=True)] = Field(
        None, description="the unit's code from /api/v1/departments (not retired)")
    location: Annotated[str | None, _text(LOCATION_MAX)] = Field(
        None, description=f"public; at most {LOCATION_MAX} characters; no phone, ID card number or full name")
    title: Annotated[str | None, _text(TITLE_MAX, required=True)] = Field(
        None, description=f"public; at most {TITLE_MAX} characters; no phone, ID card number or full name")
    description: Annotated[str | None, _text(DESCRIPTION_MAX, min_length=DESCRIPTION_MIN, required=True)] = Field(
        None, description=f"public; {DESCRIPTION_MIN}-{DESCRIPTION_MAX} characters; no phone, ID card number "
                          "or full name")
    callback_wanted: bool | None = Field(None, description="private; default true")
    sms_consent: bool | None = Field(None, description="private; default false; needs a mobile number")
    voice_callback: bool | None = Field(None, description="private; default false; the caller chose an automated "
                                                          "voice callback (the answer, spoken); needs callback_wanted")
    best_time: Annotated[str | None, _choice(list(BEST_TIME_CODES))] = Field(
        None, description="private; when the caller wants the callback: morning, afternoon, evening or any "
                          "(default); within the calling windows")
    callback_not_before: Annotated[str | None, _date()] = Field(
        None, description="private; optional; the first day the caller may be called back (YYYY-MM-DD, in the "
                          f"site's zone): today or up to {NOT_BEFORE_MAX_DAYS} days ahead")
    operator_notes: Annotated[str | None, _text(OPERATOR_NOTES_MAX)] = Field(None, description="private")


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]
    label: str | None = Field(None, description="the kind in the request's language (Accept-Language)")
    text: str | None = Field(None, description="what the forum carried: the answer, the forward note, "
                                               "the follow-up (as posted)")


class CaseSummary(BaseModel):
    number: str
    state: str
    channel: str
    department: str
    department_name: str
    forum_url: str | None
    deadline_at: datetime | None
    overdue: bool
    call_linkedid: str | None
    caller_surname: str
    caller_honorific: str
    caller_public_name: str
    caller_full_name: str
    caller_phone: str
    caller_phone_alt: str
    location: str
    title: str
    description: str
    callback_wanted: bool
    sms_consent: bool
    voice_callback: bool = Field(description="the caller chose an automated voice callback (the answer, spoken)")
    best_time: Annotated[str, WithJsonSchema({"type": "string", "enum": list(BEST_TIME_CODES)})] = Field(
        description="morning, afternoon, evening or any (also for a case filed before there was a choice)")
    best_time_text: str = Field(description="what a case filed before there was a choice said as free text; "
                                            "empty since")
    callback_not_before: date | None = Field(description="the first day the caller may be called back, or null")
    operator_notes: str
    created_at: datetime
    created_by: str | None
    updated_at: datetime


class CaseOut(CaseSummary):
    timeline: list[TimelineEntry]


class CasePage(BaseModel):
    cases: list[CaseSummary]
    page: int
    per_page: int
    total: int


# ----------------------------------------------------------------------- routes

STAFF = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
staff_user = require_role(*STAFF)

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=FieldErrorRoute, responses=FIELD_ERRORS_RESPONSE)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _readable(view: dict, request: Request) -> dict:
    """The case's timeline entries with their ``label`` (in the request's language) and ``text``."""
    shown = timeline_view(view["timeline"], {}, translations(header_locale(request)))
    view["timeline"] = [{**entry, "label": read["label"], "text": read["text"]}
                        for entry, read in zip(view["timeline"], shown, strict=True)]
    return view


@router.post("/cases", status_code=201, response_model=CaseOut, summary="File a case")
async def create_case(request: Request, body: CaseIn, user: Annotated[User, Depends(staff_user)]) -> dict:
    db = request.app.state.db
    zone = request.app.state.config.site.zone
    data = body.model_dump(exclude_none=True)

    def work() -> dict:
        with db.session() as session:
            now = _now()
            case = service.file_case(session, data, user=user, now=now, zone=zone)
            return service.case_view(case, zone, now)

    view = await db.run(work)
    # Desks update their case lists at once (the same event the desk's own form sends).
    request.app.state.live.publish(LiveEvent("case", "filed", {"number": view["number"], "state": view["state"]}))
    return _readable(view, request)


@router.get("/cases/{number}", response_model=CaseOut, summary="One case with its timeline")
async def read_case(request: Request, number: str, _user: Annotated[User, Depends(staff_user)]) -> dict:
    db = request.app.state.db
    zone = request.app.state.config.site.zone

    def work() -> dict | None:
        with db.session(readonly=True) as session:
            case = service.get_case(session, number)
            return None if case is None else service.case_view(case, zone, _now())

    view = await db.run(work)
    if view is None:
        raise HTTPException(404, f"no case {number}")
    return _readable(view, request)


@router.get("/cases", response_model=CasePage, summary="Cases, newest first, filtered and searched")
async def search_cases(
    request: Request,
    user: Annotated[User, Depends(staff_user)],
    mine: Annotated[bool, Query(description="only cases I filed")] = False,
    state: Annotated[str | None, Query(description="queued, posted, accepted, forwarded, answered, "
                                                   "reopened or closed")] = None,
    department: Annotated[str | None, Query(max_length=32, description="unit code")] = None,
    q: Annotated[str | None, Query(max_length=64, description="a case number (or part) or a phone number "
                                                              "(or 4+ of its digits)")] = None,
    overdue: Annotated[bool, Query(description="only cases past their deadline")] = False,
    today: Annotated[bool, Query(description="only cases filed today (site time zone)")] = False,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=service.MAX_PER_PAGE)] = 50,
) -> dict:
    state_value: CaseState | None = None
    if state:
        try:
            state_value = CaseState(state.strip())
        except ValueError:
            raise CaseValidationError([FieldError("state", "state_invalid",
                                                  {"choices": ", ".join(s.value for s in CaseState)})]) from None
    filters = service.CaseFilter(mine=mine, state=state_value, department=department, q=q,
                                 overdue=overdue, today=today)
    db = request.app.state.db
    zone = request.app.state.config.site.zone

    def work() -> dict:
        with db.session(readonly=True) as session:
            now = _now()
            cases, total = service.list_cases(session, filters, user=user, now=now, zone=zone,
                                              page=page, per_page=per_page)
            return {"cases": [service.case_view(c, zone, now, timeline=False) for c in cases],
                    "page": page, "per_page": per_page, "total": total}

    return await db.run(work)


__all__ = ["router"]
