"""The builtin board's pages: the public read-only board and the spokesperson pages.

``mount_board(app)`` adds them.  The spokesperson pages use the shared web layer's signed-cookie
session, CSRF tokens, sign-in throttle and page language (:mod:`bridge.web`); the session
cookie's path is ``/desk``, hence their place under it.

Public, read-only, no sign-in (the platform's colours: blue = 未受理, green = 已受理):

- ``GET /board/``                    threads, newest first; ``?unit=CODE`` for one unit's board
- ``GET /board/threads/{id}``         one thread with every reply (the case's ``forum_url``)

Spokespeople (role ``spokesperson``; their own unit's board only):

- ``GET/POST /desk/board/login``, ``POST /desk/board/logout``
- ``GET /desk/board/``                the unit's board, each thread with what can be done now
- ``POST /desk/board/posts/{id}/accept`` | ``forward`` (``to_department``, ``note``) | ``answer`` (``text``)

The texts are message ids in the catalogues (``bridge/locale``, see :mod:`bridge.i18n`): English
ids, Chinese translations.  A page's language is :func:`bridge.i18n.request_locale`'s (``?lang=``,
the session's, ``Accept-Language``, the site's); the public pages' links keep an explicit ``?lang=``.

The actions are the JSON API's (:func:`bridge.forum.builtin.api.act`): the same rules,
the same events, the case updated at once.  There is no delete anywhere.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from bridge.accounts.service import sign_in
from bridge.db.models import BoardPostState, Department, Role, User
from bridge.forum import service
from bridge.forum.builtin import board
from bridge.forum.builtin.api import act
from bridge.forum.deadline_labels import OwedStep, deadline_view
from bridge.i18n import LOCALES, N_, request_locale, translations
from bridge.web.csrf import CSRF_FIELD, check_csrf
from bridge.web.paging import RowId, clamp_id, clamp_page
from bridge.web.sessions import end_session, session_user, signed_in, start_session
from bridge.web.site import install_site, register_error_page, register_start_page
from bridge.web.templates import Templates
from bridge.web.throttle import client_ip, sign_in_throttle

PER_PAGE = 50


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _with_deadline(view: dict, post, now: datetime, request: Request) -> dict:
    """``view`` with ``deadline``: the step the thread owes (受理 / 答复 / 答复追问), its due time in the
    site's zone and its countdown (:func:`bridge.forum.deadline_labels.deadline_view`), or None."""
    owed = board.owed_since(post)
    view["deadline"] = None
    if owed is not None:
        step, state, since = owed
        policy = service.site_deadlines(request.app)
        owed_step = OwedStep(step, post.department.code, since, policy.owed(state, post.department.code, since))
        view["deadline"] = deadline_view(owed_step, now, policy=policy, zone=request.app.state.config.site.zone,
                                         tr=translations(request_locale(request)))
    return view


def _overdue_first(threads: list[dict]) -> list[dict]:
    """Overdue threads first (the longest overdue first), then the others in their order."""
    overdue = sorted((t for t in threads if t["deadline"] and t["deadline"]["overdue"]),
                     key=lambda t: t["deadline"]["due_iso_utc"])
    return overdue + [t for t in threads if not (t["deadline"] and t["deadline"]["overdue"])]

# What each kind of reply is called in a thread (the catalogues translate the msgids).
REPLY_KINDS = {"accepted": N_("Accepted"), "forwarded": N_("Forwarded"), "answer": N_("Answer"),
               "follow_up": N_("Follow-up question"), "follow_up_answer": N_("Answer to the follow-up")}
STATUS_OPTIONS = [s.value for s in BoardPostState]


def _board_values(request: Request, _) -> dict[str, Any]:
    locale = request_locale(request)
    asked = request.query_params.get("lang")

    def href(path: str) -> str:
        """A board link that keeps an explicit ``?lang=`` (the session cookie is the desk's, not sent to /board)."""
        return f"{path}{'&' if '?' in path else '?'}{urlencode({'lang': asked})}" if asked in LOCALES else path

    return {"href": href, "lang": asked if asked in LOCALES else None, "path": request.url.path,
            "status_label": lambda state: board.status_label(state, locale),
            "legend": board.legend(locale),
            "reply_kind": lambda kind: _(REPLY_KINDS[kind]) if kind in REPLY_KINDS else kind}


TEMPLATES = Templates(Path(__file__).resolve().parent / "templates", extra=_board_values)


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return TEMPLATES.render(request, name, status_code, **values)


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The board's error page (registered for ``/board`` and ``/desk/board``)."""
    return render(request, "board_error.html", status_code=status_code, message=message,
                  signed_in=signed_in(request))


# ------------------------------------------------------------------------ public

public = APIRouter(prefix="/board", include_in_schema=False)


@public.get("/")
async def board_page(request: Request, unit: str | None = None, page: int = 1) -> Response:
    db = request.app.state.db
    config = request.app.state.config
    locale = request_locale(request)
    code = (unit or "").strip().upper()[:32] or None
    page = clamp_page(page)
    now = _now()

    def work() -> dict:
        with db.session(readonly=True) as session:
            posts, total = board.list_posts(session, code, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
            units = [(d.code, d.name) for d in session.scalars(
                select(Department).where(Department.retired_at.is_(None)).order_by(Department.code))]
            return {"threads": [_with_deadline(board.post_view(p, public_url=config.web.public_url,
                                                               zone=config.site.zone, locale=locale, replies=False),
                                               p, now, request) for p in posts],
                    "total": total, "units": units}

    data = await db.run(work)
    return render(request, "board_public.html", unit=code, page_number=page, per_page=PER_PAGE, **data)


@public.get("/threads/{post_id}")
async def thread_page(request: Request, post_id: int) -> Response:
    db = request.app.state.db
    config = request.app.state.config
    locale = request_locale(request)

    def work() -> dict | None:
        with db.session(readonly=True) as session:
            post = board.get_post(session, post_id) if clamp_id(post_id) else None
            if post is None:
                return None
            names = dict(session.execute(select(Department.code, Department.name)).all())
            view = _with_deadline(board.post_view(post, public_url=config.web.public_url, zone=config.site.zone,
                                                  locale=locale), post, _now(), request)
            view["unit_names"] = names
            return view

    view = await db.run(work)
    if view is None:
        return render_error(request, 404, board.BoardError(404, "post_unknown", None, {"id": post_id}).message(
            request_locale(request)))
    return render(request, "board_thread.html", thread=view)


# ------------------------------------------------------------------ spokespeople

spokes = APIRouter(prefix="/desk/board", include_in_schema=False)


async def spokesperson(request: Request) -> User:
    """The signed-in spokesperson (read again from the database), else to the sign-in page."""
    user = await session_user(request)
    if user is not None and (user.role is not Role.SPOKESPERSON or user.department is None):
        user = None
    if user is None:
        raise HTTPException(303, headers={"Location": f"/desk/board/login?next={quote(request.url.path)}"})
    return user


@spokes.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "board_login.html", error=None, username="")


@spokes.post("/login", dependencies=[Depends(check_csrf)])
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()
    password = str(form.get("password") or "")
    _ = translations(request_locale(request)).gettext
    throttle = sign_in_throttle(request.app)
    keys = throttle.keys(username, client_ip(request))
    if throttle.locked_until(keys) is not None:
        return render(request, "board_login.html", 429, error=_("Too many failed sign-ins. Try again later."),
                      username=username)
    if not username or not password:
        return render(request, "board_login.html", 422, error=_("Enter your username and password."),
                      username=username)
    db = request.app.state.db
    user = await db.run(sign_in, db, username, password)
    if user is None:
        throttle.failure(keys)
        return render(request, "board_login.html", 401, error=_("Wrong username or password."), username=username)
    throttle.success(username)
    if user.role is not Role.SPOKESPERSON or user.department_id is None:
        return render(request, "board_login.html", 403, error=_("This account is not a unit's spokesperson."),
                      username=username)
    await start_session(request, user)
    return RedirectResponse("/desk/board/", status_code=303)


@spokes.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    await end_session(request)
    return RedirectResponse("/desk/board/login", status_code=303)


async def _unit_page(request: Request, user: User, *, status_code: int = 200, error: dict | None = None,
                     message: str | None = None) -> Response:
    db = request.app.state.db
    config = request.app.state.config
    locale = request_locale(request)

    now = _now()

    def work() -> dict:
        with db.session(readonly=True) as session:
            posts, total = board.unit_board_posts(session, user.department.code)
            units = [(d.code, d.name) for d in session.scalars(
                select(Department).where(Department.retired_at.is_(None), Department.id != user.department_id)
                .order_by(Department.code))]
            threads = [_with_deadline(board.post_view(p, public_url=config.web.public_url, zone=config.site.zone,
                                                      locale=locale), p, now, request) for p in posts]
            return {"threads": _overdue_first(threads), "total": total, "units": units}

    data = await db.run(work)
    return render(request, "board_unit.html", status_code, user=user, unit_name=user.department.name,
                  error=error, message=message, **data)


# What the board says after an action (the session's "board_done", shown once): verb -> message id.
DONE_MESSAGES = {"accept": N_("Accepted: “%(title)s” (%(case)s)."),
                 "forward": N_("Forwarded to %(unit)s: “%(title)s” (%(case)s)."),
                 "answer": N_("Answered: “%(title)s” (%(case)s).")}
DONE_KEY = "board_done"


def _remember_done(request: Request, verb: str, view: dict) -> None:
    """Keep what was done for the page the action redirects to (in the signed session, not the URL:
    a link cannot make the board claim an action)."""
    request.session[DONE_KEY] = {"verb": verb, "title": view["title"], "case": view["case_number"],
                                 "unit": view["unit_name"]}


def _done_message(request: Request) -> str | None:
    done = request.session.pop(DONE_KEY, None)
    if not isinstance(done, dict) or done.get("verb") not in DONE_MESSAGES:
        return None
    _ = translations(request_locale(request)).gettext
    return _(DONE_MESSAGES[done["verb"]]) % {"title": done.get("title", ""), "case": done.get("case", ""),
                                              "unit": done.get("unit", "")}


@spokes.get("/")
async def unit_board(request: Request, user: User = Depends(spokesperson)) -> Response:
    return await _unit_page(request, user, message=_done_message(request))


async def _do(request: Request, user: User, post_id: int, verb: str) -> Response:
    form = await request.form()
    user_id = user.id

    def fresh(session) -> User:
        found = session.get(User, user_id)
        assert found is not None
        return found

    if verb == "accept":
        action = lambda s, now: board.accept(s, post_id, fresh(s), now)  # noqa: E731
    elif verb == "forward":
        action = lambda s, now: board.forward(s, post_id, fresh(s), str(form.get("to_department") or ""),  # noqa: E731
                                              str(form.get("note") or ""), now)
    else:
        action = lambda s, now: board.answer(s, post_id, fresh(s), str(form.get("text") or ""), now)  # noqa: E731
    view, error = await act(request, action, locale=request_locale(request))
    if error is not None:
        return await _unit_page(request, user, status_code=error.status, error={
            "post": post_id, "field": error.field, "message": error.message(request_locale(request)),
            # what was entered, shown again ("entered", not "values": a template's err.values is dict.values)
            "entered": {k: str(v) for k, v in form.items() if k != CSRF_FIELD}})
    _remember_done(request, verb, view)
    return RedirectResponse(f"/desk/board/?done={verb}#post-{post_id}", status_code=303)


@spokes.post("/posts/{post_id}/{verb}", dependencies=[Depends(check_csrf)])
async def post_action(request: Request, post_id: RowId, verb: str, user: User = Depends(spokesperson)) -> Response:
    if verb not in ("accept", "forward", "answer"):
        return Response(status_code=404)
    return await _do(request, user, post_id, verb)


def mount_board(app: FastAPI) -> None:
    """Add the public board and the spokesperson pages (before the app starts)."""
    install_site(app, app.state.config)
    app.include_router(public)
    app.include_router(spokes)
    register_start_page(app, [Role.SPOKESPERSON], "/desk/board/")
    for prefix in ("/board", "/desk/board"):
        register_error_page(app, prefix, render_error)

    @app.get("/board", include_in_schema=False)
    async def board_root() -> Response:
        return RedirectResponse("/board/", status_code=307)


__all__ = ["mount_board"]
