"""The callbacks JSON API (API-token auth), mounted by the callbacks capability.

- ``GET /api/v1/callbacks?state=&owner=&case=&reason=&page=&per_page=``: tasks, the longest-waiting
  caller first (the pool's order).
- ``GET /api/v1/callbacks/{id}``: one task with its briefing and attempts.
- ``POST /api/v1/callbacks/{id}/attempts``: place a call now, as the token's operator (their desk
  phone rings first); 201 with the attempt (``result`` null while dialling), or 409
  ``{"reason", "detail", "holder"}``, ``reason`` one of :class:`callbacks.tasks.Refusal`.
- ``POST /api/v1/callbacks/{id}/outcome``: what the caller was told (422 naming the field to fix,
  nothing stored; 409 when there is no answered attempt or another operator holds the task).
- supervisors (and admins): ``POST /api/v1/callbacks/{id}/reassign`` ``{"user"}``,
  ``POST /api/v1/callbacks/{id}/release`` (to the shared pool), and
  ``POST /api/v1/do-not-call/lift`` ``{"phone"}`` (tasks may phone the number again).
- ``POST /api/v1/callbacks/{id}/number`` ``{"phone"}``: after ``check_number`` (a wrong number, or
  Asterisk's hangup cause saying the number does not exist), the number as checked; due again.
- ``GET /api/v1/callbacks/{id}/attempts/{attempt_id}/recording``: the attempt's recording (audio).

Who sees what: operators, supervisors and admins every task, with the number to phone.
A unit's spokesperson reads only the tasks of cases now at their unit, without the caller's
number, the notes or the recordings, and may not place calls nor record outcomes.

Times are UTC (ISO 8601 with ``+00:00``).  The clock and the calling policy are dependencies
(:func:`clock`, :func:`callback_policy`) so a test can fix them; the call itself goes through
``app.state.callback_placer`` (a :class:`callbacks.placing.Placer`), absent when no PBX link runs:
then every attempt is refused ``pbx_down``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from bridge.db.models import (
    CallbackAttempt,
    CallbackReason,
    CallbackState,
    CallbackTask,
    Case,
    Role,
    User,
    utcnow,
)
from bridge.live import LiveEvent
from bridge.pbx.recordings import MEDIA_TYPES, audible_recording, media_type, recordings_dir
from bridge.web.auth import require_role
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute
from bridge.web.paging import PageNumber, RowId
from callbacks import tasks
from callbacks.placing import LIVE_TOPIC
from callbacks.tasks import CallbackPolicy, CallbackRefused, OutcomeError, Refusal

log = structlog.get_logger(__name__)

HOTLINE = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)
readers = require_role(*HOTLINE, Role.SPOKESPERSON)
hotline_staff = require_role(*HOTLINE)
supervisors = require_role(*SUPERVISORS)
MAX_PER_PAGE = 100
USERNAME_MAX = 64
PHONE_MAX = 32

StateFilter = Enum("StateFilter", {s.value: s.value for s in CallbackState}, type=str)
ReasonFilter = Enum("ReasonFilter", {r.value: r.value for r in CallbackReason}, type=str)
RecordedOutcome = Enum("RecordedOutcome", {o.value: o.value for o in tasks.RECORDED_OUTCOMES}, type=str)


# ----------------------------------------------------------------------- models


class AttemptOut(BaseModel):
    id: int
    dialler: str = Field(description="asterisk, twilio, voice (automated) or sms")
    operator: str | None = Field(description="the operator whose desk phone placed it (null: automated)")
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None = Field(description="null while the call is live")
    result: str | None = Field(description="answered, busy, no_answer, failed, operator_no_answer or unknown; "
                                           "null while dialling")
    settled_by: str | None = Field(description="how the result was learnt: events, cel, person, twilio, daemon")
    recording: str | None = Field(description="the URL of the call's recording (this API), or null")
    outcome: str | None = Field(description="what the operator recorded after the call")
    satisfaction: int | None
    note: str | None = Field(description="the operator's note (null for spokespeople)")


class CallOut(BaseModel):
    linkedid: str
    arrived_at: datetime


class BriefingOut(BaseModel):
    """What to tell the caller: the case's newest answer, and what moved since the task's answer."""

    caller: str = Field(description="how to address the caller: surname and honorific, as on the forum")
    answer_text: str
    answer_unit: str | None
    thread_url: str | None
    case_state: str | None
    newer_answer: bool = Field(description="the case was answered again since this task's answer")
    moved_since: list[str] = Field(description="forwarded / follow_up_asked since the task's answer")


class TaskOut(BaseModel):
    id: int
    reason: str = Field(description="answer (a unit answered the case) or missed_call")
    case_number: str | None
    call: CallOut | None = Field(description="the missed call (reason missed_call), else null")
    phone: str | None = Field(description="the number to phone (E.164); null for spokespeople")
    state: str = Field(description="scheduled, due, in_progress, done or unreachable")
    owner: str | None = Field(description="the operator whose turn it is first; null: the shared pool")
    held_by: str | None
    due_at: datetime
    waiting_since: datetime
    outcome: str | None
    satisfaction: int | None = Field(description="1 (very dissatisfied) to 5 (very satisfied), with informed")
    review: bool = Field(description="a poor grade (2 or 1): the case waits for a supervisor's review")
    needs_check: str | None = Field(description="check_number or check_attempt: a person must act first")
    note: str | None = Field(description="the last outcome's note (null for spokespeople)")
    created_at: datetime
    completed_at: datetime | None
    briefing: BriefingOut | None = Field(description="null for a missed call without a case")
    attempts: list[AttemptOut]


class TaskPage(BaseModel):
    callbacks: list[TaskOut]
    page: int
    per_page: int
    total: int


class PlacedOut(BaseModel):
    attempt: AttemptOut
    task: TaskOut


class RefusalOut(BaseModel):
    reason: str = Field(description="one of: " + ", ".join(r.value for r in Refusal))
    detail: str
    holder: str | None = Field(description="the operator who holds the task or whose turn it is")


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "informed", "satisfaction": 5, "note": "caller thanked the unit"},
        {"outcome": "follow_up", "text": "When will the bins be emptied again?"}]})

    outcome: RecordedOutcome = Field(description="informed, follow_up, wrong_number, do_not_call or voicemail")
    satisfaction: int | None = Field(None, ge=1, le=5, description="required with informed, else absent: the 12345 "
                                                                    "grades, 5 very satisfied ... 1 very dissatisfied")
    text: str | None = Field(None, max_length=tasks.FOLLOW_UP_MAX,
                             description="required with follow_up, else absent: the caller's further question, "
                                         "posted to the case's forum thread (no phone number or full name)")
    note: str | None = Field(None, max_length=tasks.NOTE_MAX, description="private note")


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user": "operator2"}]})

    user: str = Field(min_length=1, max_length=USERNAME_MAX, description="the operator (or supervisor) to give it to")


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"phone": "+8613912345678"}]})

    phone: str = Field(min_length=1, max_length=PHONE_MAX, description="the number as on the list, or as given")


class LiftedOut(BaseModel):
    phone: str
    lifted: bool


class FieldProblem(ValueError):
    """A request field names something that does not exist (answered 422 naming the field)."""

    def __init__(self, field: str, message: str, code: str):
        super().__init__(message)
        self.field, self.code = field, code


def _field_error(field: str, message: str, code: str) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message, "code": code}]}, status_code=422)


# ----------------------------------------------------------------- dependencies


def clock() -> Callable[[], datetime]:
    """The API's clock (a test overrides this dependency)."""
    return utcnow


def callback_policy(request: Request) -> CallbackPolicy:
    """The placer's policy, else one built from the configuration once per app."""
    placer = getattr(request.app.state, "callback_placer", None)
    if placer is not None:
        return placer.policy
    policy = getattr(request.app.state, "callback_policy", None)
    if policy is None:
        policy = request.app.state.callback_policy = CallbackPolicy.of(request.app.state.config)
    return policy


Clock = Annotated[Callable[[], datetime], Depends(clock)]
Policy = Annotated[CallbackPolicy, Depends(callback_policy)]
REFUSED = {409: {"model": RefusalOut, "description": "refused: the reason says why"}}
NOT_FOUND = {404: {"description": "no such callback task (or not one of the spokesperson's unit)"}}

router = APIRouter(prefix="/api/v1", tags=["callbacks"], route_class=FieldErrorRoute,
                   responses={**FIELD_ERRORS_RESPONSE, **NOT_FOUND})


# ---------------------------------------------------------------------- reading


def _is_spokesperson(user: User) -> bool:
    return user.role is Role.SPOKESPERSON


def _name(user: User | None) -> str | None:
    return user.username if user is not None else None


def _recording_url(attempt: CallbackAttempt) -> str | None:
    if not attempt.recording:
        return None
    return f"/api/v1/callbacks/{attempt.task_id}/attempts/{attempt.id}/recording"


def _attempt_out(attempt: CallbackAttempt, private: bool) -> AttemptOut:
    return AttemptOut(
        id=attempt.id, dialler=attempt.dialler, operator=_name(attempt.operator),
        started_at=tasks.utc(attempt.started_at), answered_at=_utc(attempt.answered_at),
        ended_at=_utc(attempt.ended_at), result=_value(attempt.result), settled_by=attempt.settled_by,
        recording=_recording_url(attempt) if private else None, outcome=_value(attempt.outcome),
        satisfaction=attempt.satisfaction, note=attempt.note if private else None)


def _briefing_out(session: Session, task: CallbackTask) -> BriefingOut | None:
    if task.case_id is None:
        return None
    brief, case = tasks.briefing(session, task), task.case
    return BriefingOut(caller=f"{case.caller_surname}{case.caller_honorific.value}", answer_text=brief.answer_text, answer_unit=brief.answer_unit, thread_url=brief.thread_url,
                       case_state=brief.case_state, newer_answer=brief.newer_answer,
                       moved_since=brief.moved_since)


def task_out(session: Session, task: CallbackTask, now: datetime, *, private: bool) -> TaskOut:
    """The task as the API reads it back; ``private`` False leaves out the number, notes and recordings."""
    call = task.call
    return TaskOut(
        id=task.id, reason=task.reason.value, case_number=task.case.number if task.case is not None else None,
        call=CallOut(linkedid=call.linkedid, arrived_at=tasks.utc(call.arrived_at)) if call is not None else None,
        phone=task.phone if private else None, state=tasks.state_at(task, now).value, owner=_name(task.owner),
        held_by=_name(task.held_by), due_at=tasks.utc(task.due_at), waiting_since=tasks.utc(task.waiting_since),
        outcome=_value(task.outcome), satisfaction=task.satisfaction, review=tasks.needs_review(task),
        needs_check=_value(task.needs_check), note=task.note if private else None,
        created_at=tasks.utc(task.created_at), completed_at=_utc(task.completed_at),
        briefing=_briefing_out(session, task), attempts=[_attempt_out(a, private) for a in task.attempts])


def _utc(moment: datetime | None) -> datetime | None:
    return tasks.utc(moment) if moment is not None else None


def _value(member: Enum | None) -> str | None:
    return member.value if member is not None else None


def _loaded():
    return (selectinload(CallbackTask.attempts).selectinload(CallbackAttempt.operator),
            selectinload(CallbackTask.case), selectinload(CallbackTask.call),
            selectinload(CallbackTask.owner), selectinload(CallbackTask.held_by))


def _visible_to(user: User):
    """The condition on the tasks ``user`` may read (a spokesperson: those of cases at their unit)."""
    if not _is_spokesperson(user):
        return None
    unit_cases = select(Case.id).where(Case.department_id == user.department_id)
    return CallbackTask.case_id.in_(unit_cases)


def _state_condition(state: CallbackState, now: datetime):
    scheduled_come = and_(CallbackTask.state == CallbackState.SCHEDULED, CallbackTask.due_at <= now)
    if state is CallbackState.DUE:
        return or_(CallbackTask.state == CallbackState.DUE, scheduled_come)
    if state is CallbackState.SCHEDULED:
        return and_(CallbackTask.state == CallbackState.SCHEDULED, CallbackTask.due_at > now)
    return CallbackTask.state == state


def _list(session: Session, user: User, now: datetime, *, state: CallbackState | None, owner: str | None,
          case: str | None, reason: CallbackReason | None, page: int, per_page: int) -> TaskPage:
    conditions = [c for c in (_visible_to(user),) if c is not None]
    if state is not None:
        conditions.append(_state_condition(state, now))
    if owner:
        conditions.append(CallbackTask.owner_id == select(User.id).where(User.username == owner).scalar_subquery())
    if case:
        conditions.append(CallbackTask.case_id == select(Case.id).where(Case.number == case).scalar_subquery())
    if reason is not None:
        conditions.append(CallbackTask.reason == reason)
    total = session.scalar(select(func.count()).select_from(CallbackTask).where(*conditions))
    found = session.scalars(select(CallbackTask).options(*_loaded()).where(*conditions)
                            .order_by(CallbackTask.waiting_since, CallbackTask.id)
                            .limit(per_page).offset((page - 1) * per_page))
    private = not _is_spokesperson(user)
    return TaskPage(callbacks=[task_out(session, t, now, private=private) for t in found], page=page,
                    per_page=per_page, total=total or 0)


def _visible_task(session: Session, task_id: int, user: User) -> CallbackTask | None:
    condition = _visible_to(user)
    query = select(CallbackTask).options(*_loaded()).where(CallbackTask.id == task_id)
    return session.scalar(query if condition is None else query.where(condition))


def _read(session: Session, task_id: int, user: User, now: datetime) -> TaskOut | None:
    task = _visible_task(session, task_id, user)
    return None if task is None else task_out(session, task, now, private=not _is_spokesperson(user))


def _no_task(task_id: int) -> HTTPException:
    return HTTPException(404, f"no callback task {task_id}")


def refused(exc: CallbackRefused) -> JSONResponse:
    """409 with the reason (404 for a task that does not exist)."""
    if exc.refusal is Refusal.NOT_FOUND:
        return JSONResponse({"detail": exc.detail or "no such callback task"}, status_code=404)
    return JSONResponse({"reason": exc.refusal.value, "detail": exc.detail, "holder": exc.holder}, status_code=409)


def _publish(request: Request, task_id: int, kind: str) -> None:
    request.app.state.live.publish(LiveEvent(LIVE_TOPIC, kind, {"task_id": task_id}))


# ----------------------------------------------------------------------- routes


@router.get("/callbacks", response_model=TaskPage, summary="Callback tasks, the longest-waiting caller first")
async def list_callbacks(
    request: Request,
    user: Annotated[User, Depends(readers)],
    now: Clock,
    state: Annotated[StateFilter | None, Query(description="a scheduled task whose time has come reads due")] = None,
    owner: Annotated[str | None, Query(max_length=USERNAME_MAX, description="the owner's username")] = None,
    case: Annotated[str | None, Query(max_length=32, description="a case number")] = None,
    reason: Annotated[ReasonFilter | None, Query()] = None,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
) -> TaskPage:
    db = request.app.state.db
    return await db.run_in_session(
        _list, user, now(), state=CallbackState(state.value) if state else None, owner=owner, case=case,
        reason=CallbackReason(reason.value) if reason else None, page=page, per_page=per_page, readonly=True)


@router.get("/callbacks/{task_id}", response_model=TaskOut, summary="One callback task with its attempts")
async def read_callback(request: Request, task_id: RowId, user: Annotated[User, Depends(readers)],
                        now: Clock) -> TaskOut:
    found = await request.app.state.db.run_in_session(_read, task_id, user, now(), readonly=True)
    if found is None:
        raise _no_task(task_id)
    return found


@router.post("/callbacks/{task_id}/attempts", status_code=201, response_model=PlacedOut, responses=REFUSED,
             summary="Place a call now: the operator's desk phone rings first, then the caller")
async def place_attempt(request: Request, task_id: RowId, user: Annotated[User, Depends(hotline_staff)],
                        now: Clock) -> PlacedOut | JSONResponse:
    placer = getattr(request.app.state, "callback_placer", None)
    db = request.app.state.db
    if placer is None:
        exists = await db.run_in_session(lambda session: session.get(CallbackTask, task_id) is not None,
                                         readonly=True)
        if not exists:
            raise _no_task(task_id)
        return refused(CallbackRefused(Refusal.PBX_DOWN, "no PBX link runs in this process"))
    try:
        placed = await placer.place(task_id, user.id, supervisor=user.role in SUPERVISORS)
    except CallbackRefused as exc:
        log.info("callbacks.api_refused", task_id=task_id, reason=exc.refusal.value, operator=user.username)
        return refused(exc)

    def read_back(session: Session) -> PlacedOut:
        task = task_out(session, _visible_task(session, task_id, user), now(), private=True)
        return PlacedOut(attempt=next(a for a in task.attempts if a.id == placed.attempt_id), task=task)

    return await db.run_in_session(read_back, readonly=True)


@router.post("/callbacks/{task_id}/outcome", response_model=TaskOut, responses=REFUSED,
             summary="Record what the caller was told on the answered call")
async def record_outcome(request: Request, task_id: RowId, body: OutcomeIn,
                         user: Annotated[User, Depends(hotline_staff)], now: Clock, policy: Policy) -> TaskOut | Response:
    def work(session: Session) -> TaskOut:
        at = now()
        actor = session.get(User, user.id)
        tasks.record_outcome(session, task_id, actor, at, policy, outcome=body.outcome.value,
                             satisfaction=body.satisfaction, text=body.text or "", note=body.note or "")
        session.flush()
        return task_out(session, _visible_task(session, task_id, user), at, private=True)

    try:
        task = await request.app.state.db.run_in_session(work)
    except OutcomeError as exc:
        return _field_error(exc.field, str(exc), "outcome_rule")
    except CallbackRefused as exc:
        return refused(exc)
    _publish(request, task_id, "outcome")
    return task


@router.post("/callbacks/{task_id}/number", response_model=TaskOut, responses=REFUSED,
             summary="After check_number: the number as checked (or the same one, confirmed); due again")
async def correct_number(request: Request, task_id: RowId, body: PhoneIn, user: Annotated[User, Depends(hotline_staff)],
                         now: Clock, policy: Policy) -> TaskOut | Response:
    def work(session: Session) -> TaskOut:
        at = now()
        tasks.correct_number(session, task_id, body.phone, session.get(User, user.id), at, policy)
        return task_out(session, _visible_task(session, task_id, user), at, private=True)

    try:
        task = await request.app.state.db.run_in_session(work)
    except OutcomeError as exc:
        return _field_error(exc.field, str(exc), "phone_invalid")
    except CallbackRefused as exc:
        return refused(exc)
    log.info("callbacks.number_corrected", task_id=task_id, operator=user.username)
    _publish(request, task_id, "number_corrected")
    return task


def _colleague(session: Session, username: str) -> User:
    to = session.scalar(select(User).where(User.username == username))
    if to is None or not to.active or to.role not in (Role.OPERATOR, Role.SUPERVISOR):
        raise FieldProblem("user", f"{username!r} is not an active operator or supervisor", "user_invalid")
    return to


@router.post("/callbacks/{task_id}/reassign", response_model=TaskOut, responses=REFUSED,
             summary="Give the task to another operator (supervisors)")
async def reassign_callback(request: Request, task_id: RowId, body: ReassignIn,
                            user: Annotated[User, Depends(supervisors)], now: Clock) -> TaskOut | Response:
    def work(session: Session) -> TaskOut:
        at = now()
        tasks.reassign(session, task_id, _colleague(session, body.user), at)
        return task_out(session, _visible_task(session, task_id, user), at, private=True)

    return await _supervisor_step(request, task_id, work, "reassigned")


@router.post("/callbacks/{task_id}/release", response_model=TaskOut, responses=REFUSED,
             summary="Put the task in the shared pool: no owner, nobody holds it (supervisors)")
async def release_callback(request: Request, task_id: RowId, user: Annotated[User, Depends(supervisors)],
                           now: Clock) -> TaskOut | Response:
    def work(session: Session) -> TaskOut:
        at = now()
        tasks.release(session, task_id, at)
        return task_out(session, _visible_task(session, task_id, user), at, private=True)

    return await _supervisor_step(request, task_id, work, "released")


async def _supervisor_step(request: Request, task_id: int, work: Callable[[Session], TaskOut],
                           kind: str) -> TaskOut | Response:
    try:
        task = await request.app.state.db.run_in_session(work)
    except FieldProblem as exc:
        return _field_error(exc.field, str(exc), exc.code)
    except CallbackRefused as exc:
        return refused(exc)
    _publish(request, task_id, kind)
    return task


@router.post("/do-not-call/lift", response_model=LiftedOut,
             summary="Lift a number's do-not-call entry: tasks may phone it again (supervisors)")
async def lift_do_not_call(request: Request, body: PhoneIn, user: Annotated[User, Depends(supervisors)],
                           now: Clock) -> LiftedOut | Response:
    phone = tasks.phone_key(body.phone)
    if not phone.lstrip("+"):
        return _field_error("phone", "not a phone number; give it as on the list, e.g. +8613912345678",
                            "phone_invalid")

    def work(session: Session) -> bool:
        return tasks.lift_do_not_call(session, phone, by=session.get(User, user.id), now=now())

    if not await request.app.state.db.run_in_session(work):
        raise HTTPException(404, f"{phone} is not on the do-not-call list")
    log.info("callbacks.do_not_call_lifted", by=user.username)
    return LiftedOut(phone=phone, lifted=True)


@router.get("/callbacks/{task_id}/attempts/{attempt_id}/recording", summary="An attempt's recording",
            response_class=FileResponse,
            responses={200: {"content": {media: {} for media in (*MEDIA_TYPES.values(), "application/octet-stream")},
                             "description": "the recording"}})
async def attempt_recording(request: Request, task_id: RowId, attempt_id: RowId,
                            _user: Annotated[User, Depends(hotline_staff)]) -> Response:
    path = await attempt_recording_path(request, task_id, attempt_id)
    if path is None:
        raise HTTPException(404, "no recording of this attempt")
    return FileResponse(path, media_type=media_type(path), headers={"Cache-Control": "private, no-store"})


async def attempt_recording_path(request: Request, task_id: int, attempt_id: int):
    """The file of an attempt's recording inside the recordings folder, or None (the API's and
    the desk's recording routes)."""
    def stored(session: Session) -> str | None:
        attempt = session.get(CallbackAttempt, attempt_id)
        return attempt.recording if attempt is not None and attempt.task_id == task_id else None

    value = await request.app.state.db.run_in_session(stored, readonly=True)
    folder = recordings_dir(request.app.state.config)
    return audible_recording(folder, value)  # a header-only file is no recording


__all__ = ["attempt_recording_path", "callback_policy", "clock", "router", "task_out"]
