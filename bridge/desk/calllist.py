"""The desk page (``/desk/``) with the operator's current call, and "my calls today".

- ``/desk/`` shows the current call's pop (:func:`bridge.desk.queries.current_calls`: from the
  calls table, so it survives a reload) and links to the pages other packages add;
- ``/desk/pops``: the same pops as a fragment, which every other desk page loads (``base.html``);
- ``POST /desk/calls/{linkedid}/dismiss``: the operator closes the pop (kept in the session:
  the call stays on their list);
- ``POST /desk/calls/{linkedid}/done``: the call is dealt with without a case;
- ``/desk/calls/mine`` (and ``/rows``, the live fragment): the calls the operator answered today.
"""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from bridge.db.models import Call, Case
from bridge.desk import queries
from bridge.desk.access import current_user
from bridge.desk.queries import DeskUser
from bridge.desk.rendering import now as _now
from bridge.desk.rendering import render
from bridge.i18n import request_locale, translations
from bridge.live import LiveEvent
from bridge.web.csrf import check_csrf

router = APIRouter(prefix="/desk", include_in_schema=False)

DISMISSED_KEY = "dismissed_calls"
DISMISSED_KEPT = 20  # the session remembers this many closed pops (older ones are long gone anyway)
HANDLED_NOTE_MAX = 500


def _dismissed(request: Request) -> set[str]:
    return set(request.session.get(DISMISSED_KEY) or ())


async def _current(request: Request, user: DeskUser) -> list[dict]:
    db = request.app.state.db
    return await db.run(db.in_session, queries.current_calls, user, _now(), _dismissed(request), readonly=True)


@router.get("/")
async def desk(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return render(request, "desk.html", user=user, open_calls=await _current(request, user), page="desk")


@router.get("/pops")
async def pops(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return render(request, "_pops.html", user=user, open_calls=await _current(request, user))


@router.post("/calls/{linkedid}/dismiss", dependencies=[Depends(check_csrf)])
async def dismiss(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    kept = [lid for lid in request.session.get(DISMISSED_KEY) or () if lid != linkedid]
    request.session[DISMISSED_KEY] = [*kept, linkedid[:64]][-DISMISSED_KEPT:]
    return Response(status_code=200)


def _mark_done(session, linkedid: str, user: DeskUser, note: str, now: datetime) -> str:
    """'done', or why not: 'missing' (no such call of this operator's), 'filed' (a case has it)."""
    call = session.scalar(select(Call).where(Call.linkedid == linkedid, queries._answered_by(user)))
    if call is None:
        return "missing"
    if session.scalar(select(Case.id).where(Case.call_id == call.id).limit(1)) is not None:
        return "filed"
    if call.handled_at is None:
        call.handled_at, call.handled_note = now, note or None
        call.taken_by_id, call.taken_at = user.id, call.taken_at or now
    return "done"


@router.post("/calls/{linkedid}/done", dependencies=[Depends(check_csrf)])
async def done(request: Request, linkedid: str, user: DeskUser = Depends(current_user)) -> Response:
    form = await request.form()
    note = str(form.get("note") or "").strip()
    tr = translations(request_locale(request))
    if len(note) > HANDLED_NOTE_MAX:
        return Response(tr.gettext("The note is too long: at most %(n)d characters.") % {"n": HANDLED_NOTE_MAX},
                        status_code=422)
    db = request.app.state.db

    def work() -> str:
        with db.session() as session:
            return _mark_done(session, linkedid, user, note, _now())

    result = await db.run(work)
    if result == "missing":
        return Response(tr.gettext("You answered no such call."), status_code=404)
    if result == "filed":
        return Response(tr.gettext("A case was already filed from this call."), status_code=409)
    request.app.state.live.publish(LiveEvent("call", "done", {"linkedid": linkedid}))
    return Response(status_code=200, headers={"HX-Trigger": "hb:calls"})


async def _my_calls(request: Request, user: DeskUser) -> list[dict]:
    db = request.app.state.db
    zone = request.app.state.config.site.zone
    return await db.run(db.in_session, queries.my_calls_today, user, _now(), zone, readonly=True)


@router.get("/calls/mine")
async def my_calls(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return render(request, "my_calls.html", user=user, calls=await _my_calls(request, user), page="mycalls")


@router.get("/calls/mine/rows")
async def my_call_rows(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return render(request, "_my_call_rows.html", user=user, calls=await _my_calls(request, user))
