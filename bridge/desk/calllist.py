"""The desk page (``/desk/``) and the shared "to call back / to file" list on it.

``/desk/callbacks`` is the list as a fragment; ``calls/{linkedid}/take``, ``/done`` and
``/release`` act on its rows (see :mod:`bridge.desk.queries` for the rules).  Each action
answers an htmx request with the list again (and a message), a plain form post with a
redirect to the desk or an error page, and publishes topic ``callbacks`` live.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bridge.db.models import Role
from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import SUPERVISING_ROLES, render
from bridge.desk.rendering import now as _now
from bridge.i18n import request_locale, translations
from bridge.live import LiveEvent
from bridge.web.csrf import check_csrf

router = APIRouter(prefix="/desk", include_in_schema=False)


def _lists(session, user: DeskUser, now: datetime) -> dict[str, Any]:
    """The shared list (``callbacks``) and, for supervisors, the calls done from it (``done``)."""
    return {"callbacks": queries.callback_list(session, now),
            "done": queries.done_list(session, now) if user.role in SUPERVISING_ROLES else None,
            "done_days": queries.CALLBACK_LIST_DAYS}


@router.get("/")
async def desk(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db

    def work() -> tuple[dict[str, Any], list[dict]]:
        with db.session(readonly=True) as session:
            now = _now()
            return _lists(session, user, now), queries.open_calls_at(session, user.extension, now)

    lists, open_calls = await db.run(work)
    return render(request, "desk.html", user=user, open_calls=open_calls, page="desk", **lists)


@router.get("/callbacks")
async def callbacks_fragment(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    lists = await db.run(db.in_session, _lists, user, _now(), readonly=True)
    return render(request, "_callbacks.html", user=user, **lists)


async def _callbacks_answer(request: Request, user: DeskUser, linkedid: str, kind: str | None,
                            message: str | None = None, status_code: int = 200) -> Response:
    if kind is not None:
        request.app.state.live.publish(LiveEvent("callbacks", "changed", {
            "linkedid": linkedid, "kind": kind, "by": user.display_name}))
    if request.headers.get("hx-request") == "true":
        db = request.app.state.db
        lists = await db.run(db.in_session, _lists, user, _now(), readonly=True)
        # htmx swaps 2xx answers only; the refusal is told in the list's message
        return render(request, "_callbacks.html", user=user, message=message, message_linkedid=linkedid, **lists)
    if message is None:
        return RedirectResponse("/desk/", status_code=303)
    return render(request, "error.html", status_code=status_code, user=user, message=message)


@router.post("/calls/{linkedid}/take", dependencies=[Depends(check_csrf)])
async def take_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def work() -> tuple[str, str | None]:
        with db.session() as session:
            return queries.take_call(session, linkedid, user.id, _now())

    outcome, name = await db.run(work)
    if outcome == "taken":
        return await _callbacks_answer(request, user, linkedid, "taken")
    if outcome == "mine":
        return await _callbacks_answer(request, user, linkedid, None)
    if outcome == "taken_by_other":
        return await _callbacks_answer(request, user, linkedid, None, _("%(name)s took this call first.")
                                       % {"name": name}, 409)
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is no longer on the list."), 404)


@router.post("/calls/{linkedid}/done", dependencies=[Depends(check_csrf)])
async def done_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    form = await request.form()
    note = form.get("note")
    note = note if isinstance(note, str) else ""
    db = request.app.state.db
    _ = translations(request_locale(request)).gettext

    def work() -> tuple[str, str | None]:
        with db.session() as session:
            return queries.done_call(session, linkedid, user.id, note, _now())

    outcome, name = await db.run(work)
    if outcome == "done":
        return await _callbacks_answer(request, user, linkedid, "done")
    if outcome == "note_missing":
        return await _callbacks_answer(request, user, linkedid, None,
                                       _("Say how the call was handled: the note is required."), 422)
    if outcome == "not_yours":
        message = (_("%(name)s took this call: only they can mark it done.") % {"name": name} if name
                   else _("Take the call first."))
        return await _callbacks_answer(request, user, linkedid, None, message, 409)
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is no longer on the list."), 404)


@router.post("/calls/{linkedid}/release", dependencies=[Depends(check_csrf)])
async def release_call(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    _ = translations(request_locale(request)).gettext
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        return await _callbacks_answer(request, user, linkedid, None,
                                       _("Only a supervisor can put a taken call back on the list."), 403)
    db = request.app.state.db

    def work() -> str:
        with db.session() as session:
            return queries.release_call(session, linkedid, _now())

    if await db.run(work) == "released":
        return await _callbacks_answer(request, user, linkedid, "released")
    return await _callbacks_answer(request, user, linkedid, None,
                                   _("This call is not taken or no longer on the list."), 404)

