"""Queue presence on the desk: the operator's own panel on ``/desk/`` (in the queue, paused with a
reason, away; pause and resume), the supervisors' live page ``/desk/queue`` (who is in the queue,
paused for how long, on a call / ringing / free, away; the callers waiting), and the desk page's
heartbeat (its live stream ``/desk/events`` touches the session, :func:`bridge.web.site.add_stream_watcher`).

Routes:

* ``GET /desk/presence``: the operator's panel (a fragment, loaded by htmx and reloaded live);
* ``POST /desk/presence/pause`` (``reason``: ``break``, ``callback``, ``training``) and
  ``POST /desk/presence/resume`` (CSRF): htmx gets the panel again, a plain form a redirect;
* ``GET /desk/queue`` (supervisors, admins; the fragment for htmx) and
  ``POST /desk/queue/sessions/{id}/end``: sign an operator out.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from bridge.db.models import PauseReason, Role, utcnow
from bridge.desk.queries import DESK_ROLES, DeskUser, desk_user
from bridge.i18n import N_, request_locale, translations
from bridge.live import LiveEvent
from bridge.presence import service
from bridge.presence.link import LIVE_TOPIC
from bridge.web.csrf import check_csrf
from bridge.web.paging import RowId
from bridge.web.sessions import RoleRefused, page_user

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/desk", include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent / "templates"
# The desk page's live stream touches its session this often (well within the away timeout).
TOUCH_S = 20.0

PAUSE_LABELS = {"break": N_("Break"), "callback": N_("On a callback"), "training": N_("Training")}
STATE_LABELS = {"free": N_("Free"), "in_call": N_("On a call"), "busy": N_("Busy"), "ringing": N_("Ringing"),
                "ringing_in_call": N_("Ringing (on a call)"), "on_hold": N_("On hold"),
                "unavailable": N_("Phone unreachable"), "invalid": N_("Phone unknown to Asterisk"),
                "unknown": N_("Unknown")}
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)


async def current_user(request: Request) -> DeskUser:
    """The signed-in desk user (as the desk's own pages have it)."""
    return desk_user(await page_user(request, DESK_ROLES), request.session)


def _link(request: Request):
    runtime = getattr(request.app.state, "runtime", None)
    return runtime.links.get("presence") if runtime is not None else None


def _timeout_s(request: Request) -> float:
    return float(request.app.state.config.desk.presence_timeout_s)


def _clock(request: Request):
    return getattr(request.app.state, "presence_clock", utcnow)


def _token(request: Request) -> str | None:
    token = request.session.get("sid")
    return token if isinstance(token, str) else None


def _publish(request: Request, kind: str, user_id: int, **data: Any) -> None:
    request.app.state.live.publish(LiveEvent(LIVE_TOPIC, kind, {"user_id": user_id, **data}))


def _since(moment: datetime | None, now: datetime) -> float | None:
    return (now - moment).total_seconds() if moment is not None else None


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _values(request: Request) -> dict[str, Any]:
    _ = translations(request_locale(request)).gettext
    return {"pause_label": lambda r: _(PAUSE_LABELS.get(r, r)), "device_label": lambda s: _(STATE_LABELS.get(s, s)),
            "pause_reasons": [r.value for r in PauseReason], "clock_text": _clock_text}


def _render(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    return request.app.state.presence_templates.render(request, name, status_code, **_values(request), **values)


# ----------------------------------------------------------------- the operator's panel


async def _panel(request: Request, user: DeskUser, *, message: str | None = None, status_code: int = 200) -> Response:
    db, now = request.app.state.db, _clock(request)()
    mine = await db.run_in_session(service.my_session, _token(request), now, timeout_s=_timeout_s(request),
                                   readonly=True)
    link = _link(request)
    state = link.board.state_of(service.interface_of(mine.extension)) if link and mine and mine.extension else None
    return _render(request, "presence/panel.html", status_code, user=user, mine=mine, device_state=state,
                   paused_s=_since(mine.paused_at, now) if mine else None, message=message,
                   pbx_linked=link is not None and link.board.loaded)


@router.get("/presence")
async def panel(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    return await _panel(request, user)


def _after_action(request: Request, user: DeskUser):
    async def answer(message: str | None = None, status_code: int = 200) -> Response:
        # htmx swaps 2xx answers only: a refusal is said in the panel
        if request.headers.get("hx-request") == "true":
            return await _panel(request, user, message=message)
        if message is not None:
            return await _panel(request, user, message=message, status_code=status_code)
        return RedirectResponse("/desk/", status_code=303)
    return answer


@router.post("/presence/pause", dependencies=[Depends(check_csrf)])
async def pause(request: Request, reason: str = Form(""), user: DeskUser = Depends(current_user)) -> Response:
    _ = translations(request_locale(request)).gettext
    answer = _after_action(request, user)
    if reason not in PAUSE_LABELS:
        return await answer(_("Choose why you pause: break, on a callback or training."), 422)
    db = request.app.state.db
    try:
        await db.run_in_session(service.pause, _token(request), reason, _clock(request)())
    except service.NotSignedIn:
        return await answer(_("You are not in the queue: sign in with your extension first."), 409)
    _publish(request, "paused", user.id, reason=reason)
    return await answer()


@router.post("/presence/resume", dependencies=[Depends(check_csrf)])
async def resume(request: Request, user: DeskUser = Depends(current_user)) -> Response:
    _ = translations(request_locale(request)).gettext
    answer = _after_action(request, user)
    db = request.app.state.db
    try:
        await db.run_in_session(service.resume, _token(request), _clock(request)())
    except service.NotSignedIn:
        return await answer(_("You are not in the queue: sign in with your extension first."), 409)
    _publish(request, "resumed", user.id)
    return await answer()


# ------------------------------------------------------------------ the supervisors' page


async def supervisor(user: DeskUser = Depends(current_user)) -> DeskUser:
    if user.role not in SUPERVISORS:
        raise RoleRefused()
    return user


def board_rows(views: list[service.SessionView], link, now: datetime) -> dict[str, Any]:
    """The page's rows: each active session with its queue member's state, members no session
    calls for (static ones, or a leftover), and the callers waiting."""
    members = dict(link.board.members) if link is not None else {}
    rows = []
    for view in views:
        interface = service.interface_of(view.extension) if view.extension else None
        member = members.pop(interface, None) if interface else None
        rows.append({"view": view, "member": member, "in_queue": member is not None,
                     "paused_s": _since(view.paused_at, now), "seen_s": _since(view.last_seen_at, now)})
    callers = [{"caller": c, "waited_s": _since(c.joined_at, now)} for c in (link.board.waiting() if link else [])]
    return {"rows": rows, "strangers": list(members.values()), "callers": callers}


async def _queue(request: Request, user: DeskUser, *, message: str | None = None) -> Response:
    db, now = request.app.state.db, _clock(request)()
    views = await db.run_in_session(service.session_views, now, timeout_s=_timeout_s(request), readonly=True)
    link = _link(request)
    fragment = request.headers.get("hx-request") == "true"
    return _render(request, "presence/queue.html" if fragment else "presence/queue_page.html", user=user,
                   page="queue", queue_name=request.app.state.config.pbx.queue, message=message,
                   pbx_linked=link is not None and link.board.loaded, **board_rows(views, link, now))


@router.get("/queue")
async def queue_page(request: Request, user: DeskUser = Depends(supervisor)) -> Response:
    return await _queue(request, user)


@router.post("/queue/sessions/{session_id}/end", dependencies=[Depends(check_csrf)])
async def end_session(request: Request, session_id: RowId, user: DeskUser = Depends(supervisor)) -> Response:
    _ = translations(request_locale(request)).gettext
    db = request.app.state.db
    row = await db.run_in_session(service.end_by_supervisor, session_id, user.id, _clock(request)())
    if row is None:
        message = _("That sign-in had already ended.")
    else:
        log.info("presence.signed_out_by_supervisor", user_id=row.user_id, extension=row.extension, by=user.id)
        _publish(request, "signed_out", row.user_id, by=user.id)
        message = _("%(name)s is signed out.") % {"name": row.name}
    if request.headers.get("hx-request") == "true":
        return await _queue(request, user, message=message)
    return RedirectResponse("/desk/queue", status_code=303)


# ---------------------------------------------------------------- the page's heartbeat


def stream_watcher(every_s: float = TOUCH_S):
    """The desk stream's watcher: touch the session when the stream opens and every ``every_s``;
    False (the page is signed out) once the session ended."""
    async def watch(request: Request, user: DeskUser) -> bool:
        token = _token(request)
        if token is None:
            return False
        db = request.app.state.db
        touched = await db.run_in_session(service.touch, token, _clock(request)(), _timeout_s(request))
        if touched.came_back:
            _publish(request, "back", user.id)
        return touched.active

    watch.every_s = every_s
    return watch

