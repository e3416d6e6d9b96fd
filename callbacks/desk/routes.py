"""The callback queue's pages under ``/desk/callbacks`` (the desk's session, CSRF and look).

``GET /desk/callbacks`` is the queue (as a fragment for htmx: the live reload); the actions post
to ``/desk/callbacks/{id}/take``, ``/call``, ``/outcome``, ``/close`` (a missed call done without a
case: :func:`callbacks.missed_calls.close_without_case`) and, for supervisors, ``/reassign``,
``/release``, ``/number`` (the checked number of a ``check_number`` task) and
``/desk/callbacks/do-not-call/{id}/lift``.
Each answers htmx with the queue again (with a message), a plain form post with a redirect to the
queue or the page with the message, and publishes topic ``callbacks`` live.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from bridge.db.models import CallbackOutcome, User, utcnow
from bridge.desk.queries import DESK_ROLES, DeskUser, desk_user
from bridge.i18n import request_locale, translations
from bridge.live import LiveEvent
from bridge.pbx.recordings import media_type
from bridge.web.csrf import check_csrf
from bridge.web.paging import MAX_ID, RowId
from bridge.web.sessions import page_user
from callbacks import missed_calls, tasks
from callbacks.api import attempt_recording_path
from callbacks.desk import labels
from callbacks.desk.queue import Viewer, lift, queue, release_task, take_task
from callbacks.placing import LIVE_TOPIC
from callbacks.tasks import RECORDED_OUTCOMES, SATISFACTION_GRADES, CallbackPolicy, CallbackRefused, OutcomeError

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/desk/callbacks", include_in_schema=False)
QUEUE = "/desk/callbacks"
MISSED_CALL_OUTCOMES = (CallbackOutcome.WRONG_NUMBER, CallbackOutcome.DO_NOT_CALL, CallbackOutcome.VOICEMAIL)


async def current_user(request: Request) -> DeskUser:
    """The signed-in desk user (as the desk's own pages have it)."""
    return desk_user(await page_user(request, DESK_ROLES), request.session)


def policy_of(request: Request) -> CallbackPolicy:
    return request.app.state.callback_policy


def clock_of(request: Request) -> Callable[[], datetime]:
    """The queue's clock (the Placer's own in the daemon; a test may set ``app.state.callback_clock``)."""
    return getattr(request.app.state, "callback_clock", utcnow)


def _labels(_: Callable[[str], str]) -> dict[str, Any]:
    return {"reason_label": lambda r: _(labels.REASON_LABELS.get(r, r)),
            "callback_state_label": lambda s: _(labels.STATE_LABELS.get(s, s)),
            "result_label": lambda r: _(labels.RESULT_LABELS.get(r, r)),
            "outcome_label": lambda o: _(labels.OUTCOME_LABELS.get(o, o)),
            "grade_label": lambda g: _(labels.GRADE_LABELS.get(g, str(g))),
            "check_label": lambda c: _(labels.CHECK_LABELS.get(c, c)),
            "moved_label": lambda k: _(labels.MOVED_LABELS.get(k, k)),
            "newer_answer": labels.NEWER_ANSWER,
            "outcomes": [o.value for o in RECORDED_OUTCOMES], "grades": sorted(SATISFACTION_GRADES, reverse=True),
            # a missed call reached is closed without a case or filed; these outcomes remain
            "missed_call_outcomes": [o.value for o in MISSED_CALL_OUTCOMES]}


def _localtime(request: Request) -> Callable[[datetime | str | None], str]:
    zone = request.app.state.config.site.zone
    return lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else ""


def _viewer(user: DeskUser) -> Viewer:
    return Viewer(user.id, user.role)


async def _queue_values(request: Request, user: DeskUser) -> dict[str, Any]:
    db = request.app.state.db
    tr = translations(request_locale(request))
    data = await db.run(db.in_session, queue, _viewer(user), clock_of(request)(), policy_of(request), tr,
                        readonly=True)
    return {**data, "supervisor": _viewer(user).supervisor}


async def _render(request: Request, user: DeskUser, status_code: int = 200, fragment: bool = False,
                  **values: Any) -> Response:
    _ = translations(request_locale(request)).gettext
    data = await _queue_values(request, user)
    name = "callbacks/queue.html" if fragment else "callbacks/page.html"
    return request.app.state.callback_templates.render(request, name, status_code, user=user, page="callbacks",
                                                       fragment=fragment, **_labels(_), **data, **values)


@router.get("")
async def queue_page(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    # htmx asks for the queue alone on a live reload: the last action's message stays on the page
    return await _render(request, user, fragment=request.headers.get("hx-request") == "true", live_reload=True)


async def _answer(request: Request, user: DeskUser, task_id: int | None, kind: str | None, *,
                  message: str | None = None, ok: bool = False, status_code: int = 200, **values: Any) -> Response:
    """What an action answers: the queue again for htmx, else a redirect (or the page with the message)."""
    if kind is not None:
        request.app.state.live.publish(LiveEvent(LIVE_TOPIC, kind, {"task_id": task_id, "kind": kind,
                                                                    "by": user.display_name}))
    if request.headers.get("hx-request") == "true":  # htmx swaps 2xx answers only: the refusal is in the page
        return await _render(request, user, fragment=True, message=message, message_ok=ok, message_task=task_id,
                             **values)
    if message is None and not values:
        return RedirectResponse(QUEUE, status_code=303)
    return await _render(request, user, status_code=status_code, message=message, message_ok=ok,
                         message_task=task_id, **values)


def _refused(request: Request, refusal: CallbackRefused) -> str:
    _ = translations(request_locale(request)).gettext
    return labels.refusal_text(refusal.refusal, refusal.detail, refusal.holder, _, _localtime(request))


_STATUS = {tasks.Refusal.NOT_FOUND: 404}


async def _act(request: Request, user: DeskUser, task_id: int, kind: str, work: Callable[..., Any]) -> Response:
    """Run ``work(session, user_row, now)`` in one transaction; a refusal is told in plain words (an
    :class:`OutcomeError` reaches the caller, to be shown beside its field)."""
    db = request.app.state.db
    now = clock_of(request)()

    def run() -> None:
        with db.session() as session:
            work(session, session.get(User, user.id), now)

    try:
        await db.run(run)
    except CallbackRefused as refusal:
        return await _answer(request, user, task_id, None, message=_refused(request, refusal),
                             status_code=_STATUS.get(refusal.refusal, 409))
    return await _answer(request, user, task_id, kind)


def _supervisor(user: DeskUser) -> bool:
    return _viewer(user).supervisor


@router.post("/{task_id}/take", dependencies=[Depends(check_csrf)])
async def take(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    policy = policy_of(request)
    return await _act(request, user, task_id, "taken", lambda session, me, now: take_task(
        session, task_id, me, now, policy, supervisor=_supervisor(user)))


@router.post("/{task_id}/call", dependencies=[Depends(check_csrf)])
async def call(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    _ = translations(request_locale(request)).gettext
    placer = getattr(request.app.state, "callback_placer", None)
    if placer is None:  # no daemon runs the PBX link for this app
        return await _answer(request, user, task_id, None, message=_(labels.PBX_DOWN), status_code=503)
    try:
        placed = await placer.place(task_id, user.id, supervisor=_supervisor(user), extension=user.extension)
    except CallbackRefused as refusal:
        return await _answer(request, user, task_id, None, message=_refused(request, refusal),
                             status_code=_STATUS.get(refusal.refusal, 409))
    brief = placed.briefing  # what moved since the answer, said once more as the phone rings
    warnings = [_(labels.MOVED_LABELS[k]) for k in dict.fromkeys(brief.moved_since) if k in labels.MOVED_LABELS]
    if brief.newer_answer:
        warnings.append(_(labels.NEWER_ANSWER))
    log.info("callbacks.desk_call", task_id=task_id, attempt=placed.key, operator=user.username)
    return await _answer(request, user, task_id, None, ok=True, warnings=warnings,
                         message=_("Calling: your phone rings first, then the caller's."))


def _grade(value: object) -> int | None:
    try:
        return int(value) if isinstance(value, str) and value.strip() else None
    except ValueError:
        return 0  # not a grade: the rules refuse it beside its field


@router.post("/{task_id}/outcome", dependencies=[Depends(check_csrf)])
async def outcome(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    form = await request.form()
    sent = {name: value if isinstance(value := form.get(name), str) else ""
            for name in ("outcome", "satisfaction", "text", "note")}
    _ = translations(request_locale(request)).gettext
    policy = policy_of(request)
    try:
        return await _act(request, user, task_id, "outcome", lambda session, me, now: tasks.record_outcome(
            session, task_id, me, now, policy, outcome=sent["outcome"], satisfaction=_grade(sent["satisfaction"]),
            text=sent["text"], note=sent["note"]))
    except OutcomeError as problem:
        errors = {problem.field: _(labels.OUTCOME_ERRORS[labels.outcome_error_key(problem)])}
        return await _answer(request, user, task_id, None, status_code=422, errors=errors, error_task=task_id,
                             values=sent, message=_("The outcome is not recorded: see the form."))


async def _supervisors_only(request: Request, user: DeskUser, task_id: int | None) -> Response | None:
    if _supervisor(user):
        return None
    _ = translations(request_locale(request)).gettext
    return await _answer(request, user, task_id, None, status_code=403,
                         message=_("Only a supervisor can do this."))


@router.post("/{task_id}/close", dependencies=[Depends(check_csrf)])
async def close_call(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    """A missed call done without a case (the note says how)."""
    form = await request.form()
    note = form.get("note")
    note = note if isinstance(note, str) else ""
    _ = translations(request_locale(request)).gettext
    policy = policy_of(request)
    try:
        return await _act(request, user, task_id, "closed", lambda session, me, now: missed_calls.close_without_case(
            session, task_id, me, note, now, policy, supervisor=_supervisor(user)))
    except OutcomeError as problem:
        errors = {"note": _(labels.OUTCOME_ERRORS[labels.outcome_error_key(problem)])}
        return await _answer(request, user, task_id, None, status_code=422, errors=errors, error_task=task_id,
                             values={"note": note}, message=errors["note"])


@router.post("/{task_id}/release", dependencies=[Depends(check_csrf)])
async def release(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    if (refused := await _supervisors_only(request, user, task_id)) is not None:
        return refused
    return await _act(request, user, task_id, "released",
                      lambda session, _me, now: release_task(session, task_id, now))


@router.post("/{task_id}/reassign", dependencies=[Depends(check_csrf)])
async def reassign(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    if (refused := await _supervisors_only(request, user, task_id)) is not None:
        return refused
    form = await request.form()
    _ = translations(request_locale(request)).gettext
    target = form.get("user_id")
    db = request.app.state.db
    to = await db.run(db.in_session, _desk_user, target if isinstance(target, str) else "", readonly=True)
    if to is None:
        return await _answer(request, user, task_id, None, status_code=422,
                             message=_("Choose an operator who may use the desk."))
    return await _act(request, user, task_id, "reassigned",
                      lambda session, _me, now: tasks.reassign(session, task_id, session.get(User, to), now))


def _desk_user(session, value: str) -> int | None:
    chosen = int(value) if value.isascii() and value.isdigit() and int(value) <= MAX_ID else None
    user = session.get(User, chosen) if chosen else None
    return user.id if user is not None and user.active and user.role in DESK_ROLES else None


@router.post("/{task_id}/number", dependencies=[Depends(check_csrf)])
async def correct_number(request: Request, task_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    """After ``check_number``: a supervisor puts the number as checked (or confirms it); due again."""
    if (refused := await _supervisors_only(request, user, task_id)) is not None:
        return refused
    form = await request.form()
    phone = form.get("phone")
    phone = phone if isinstance(phone, str) else ""
    policy = policy_of(request)
    _ = translations(request_locale(request)).gettext
    try:
        return await _act(request, user, task_id, "number_checked", lambda session, me, now: tasks.correct_number(
            session, task_id, phone, me, now, policy))
    except OutcomeError:
        errors = {"phone": _(labels.OUTCOME_ERRORS["phone"])}
        return await _answer(request, user, task_id, None, status_code=422, errors=errors, error_task=task_id,
                             values={"phone": phone}, message=errors["phone"])


@router.post("/do-not-call/{entry_id}/lift", dependencies=[Depends(check_csrf)])
async def lift_entry(request: Request, entry_id: RowId, user: DeskUser = Depends(current_user)) -> Response:
    if (refused := await _supervisors_only(request, user, None)) is not None:
        return refused
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def run() -> bool:
        with db.session() as session:
            return lift(session, entry_id, user.id, clock_of(request)())

    if not await db.run(run):
        return await _answer(request, user, None, None, status_code=404,
                             message=_("This number is no longer on the do-not-call list."))
    log.info("callbacks.do_not_call_lifted", entry=entry_id, by=user.username)
    return await _answer(request, user, None, "do_not_call_lifted")


@router.get("/{task_id}/attempts/{attempt_id}/recording")
async def attempt_recording(request: Request, task_id: RowId, attempt_id: RowId,
                            user: DeskUser = Depends(current_user)) -> Response:
    """An attempt's recording for the desk's player (the call log's route knows only inbound calls)."""
    path = await attempt_recording_path(request, task_id, attempt_id)
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, media_type=media_type(path), headers={"Cache-Control": "private, no-store"})
