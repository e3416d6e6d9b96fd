"""The builtin board's pages: the public read-only board and the spokesperson pages.

``mount_board(app)`` adds them; call it after ``mount_desk`` (the spokesperson pages
use the desk's signed-cookie session, CSRF tokens, sign-in throttle and page
language; the session cookie's path is ``/desk``, hence their place under it).

Public, read-only, no sign-in (the platform's colours: blue = 未受理, green = 已受理):

- ``GET /board/``                    threads, newest first; ``?unit=CODE`` for one unit's board
- ``GET /board/threads/{id}``         one thread with every reply (the case's ``forum_url``)

Spokespeople (role ``spokesperson``; their own unit's board only):

- ``GET/POST /desk/board/login``, ``POST /desk/board/logout``
- ``GET /desk/board/``                the unit's board, each thread with what can be done now
- ``POST /desk/board/posts/{id}/accept`` | ``forward`` (``to_department``, ``note``) | ``answer`` (``text``)

The actions are the JSON API's (:func:`bridge.forum.builtin.api.act`): the same rules,
the same events, the case updated at once.  There is no delete anywhere.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from bridge.accounts.service import authenticate
from bridge.db.models import BoardPostState, Department, Role, User
from bridge.i18n import HTML_LANG, request_locale
from bridge.desk.security import CSRF_FIELD, check_csrf, client_ip, csrf_token
from bridge.forum.builtin import board
from bridge.forum.builtin.api import act

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
PER_PAGE = 50

# The pages' texts: English message id -> Chinese.  English pages show the id itself.
ZH = {
    "Public board": "网络问政公开版块", "All units": "全部单位", "Unit": "单位", "Status": "状态",
    "Title": "标题", "Posted": "发帖时间", "Updated": "更新时间", "No threads yet.": "暂无帖子。",
    "Case number": "热线编号", "Posted by": "发帖人", "Replies": "回复", "Back to the board": "返回版块",
    "Spokesperson sign-in": "网络发言人登录", "Username": "用户名", "Password": "密码", "Sign in": "登录",
    "Sign out": "退出", "Wrong username or password.": "用户名或密码错误。",
    "Enter your username and password.": "请输入用户名和密码。",
    "This account is not a unit's spokesperson.": "该账号不是单位网络发言人。",
    "Too many failed sign-ins. Try again later.": "登录失败次数过多，请稍后再试。",
    "Board of %(unit)s": "%(unit)s版块", "Accept": "受理", "Forward": "转办", "Answer": "答复",
    "Forward to unit": "转办单位", "Note to the poster (required): which unit handles it": "给发帖人的转办说明（必填）：由哪个单位办理",
    "Answer text": "答复内容", "Done.": "操作成功。", "Nothing waits on this board.": "本版块暂无帖子。",
    "accepted": "已受理", "forwarded": "转办", "answer": "答复", "follow_up": "追问", "follow_up_answer": "追问答复",
    "The post was forwarded to %(unit)s.": "已转至%(unit)s。", "Every post is kept; nothing is deleted.":
        "所有帖子永久保留，不删除。", "Legend": "图例", "Thread": "帖子", "to": "转至",
}
STATUS_OPTIONS = [s.value for s in BoardPostState]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    config = request.app.state.config
    locale = request_locale(request)

    def _(text: str) -> str:
        return ZH.get(text, text) if locale == "zh_CN" else text

    def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(config.site.zone).strftime(fmt) if value else ""

    base = {"request": request, "_": _, "locale": locale, "html_lang": HTML_LANG.get(locale, "zh-CN"),
            "site_name": config.site.name, "localtime": localtime, "csrf": csrf_token(request),
            "csrf_field": CSRF_FIELD, "user": None, "path": request.url.path}
    base.update(values)
    return HTMLResponse(ENV.get_template(name).render(base), status_code=status_code,
                        headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------ public

public = APIRouter(prefix="/board", include_in_schema=False)


@public.get("/")
async def board_page(request: Request, unit: str | None = None, page: int = 1) -> Response:
    db = request.app.state.db
    config = request.app.state.config
    locale = request_locale(request)
    code = (unit or "").strip().upper()[:32] or None
    page = max(1, page)

    def work() -> dict:
        with db.session(readonly=True) as session:
            posts, total = board.list_posts(session, code, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
            units = [(d.code, d.name) for d in session.scalars(
                select(Department).where(Department.retired_at.is_(None)).order_by(Department.code))]
            return {"threads": [board.post_view(p, public_url=config.web.public_url, zone=config.site.zone,
                                                locale=locale, replies=False) for p in posts],
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
            post = board.get_post(session, post_id)
            if post is None:
                return None
            names = dict(session.execute(select(Department.code, Department.name)).all())
            view = board.post_view(post, public_url=config.web.public_url, zone=config.site.zone, locale=locale)
            view["unit_names"] = names
            return view

    view = await db.run(work)
    if view is None:
        return render(request, "board_error.html", status_code=404, message=f"404: {post_id}")
    return render(request, "board_thread.html", thread=view)


# ------------------------------------------------------------------ spokespeople

spokes = APIRouter(prefix="/desk/board", include_in_schema=False)


async def spokesperson(request: Request) -> User:
    """The signed-in spokesperson (read again from the database), else to the sign-in page."""
    user_id = request.session.get("uid")
    db = request.app.state.db

    def load() -> User | None:
        with db.session(readonly=True) as session:
            found = session.get(User, user_id) if user_id else None
            if found is None or found.disabled_at is not None or found.role is not Role.SPOKESPERSON:
                return None
            found.department  # noqa: B018 - loaded before the session ends
            session.expunge_all()
            return found

    user = await db.run(load)
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
    locale = request_locale(request)
    _ = (lambda t: ZH.get(t, t)) if locale == "zh_CN" else (lambda t: t)
    throttle = getattr(request.app.state, "desk_throttle", None)
    keys = throttle.keys(username, client_ip(request)) if throttle else []
    if throttle and throttle.locked_until(keys) is not None:
        return render(request, "board_login.html", 429, error=_("Too many failed sign-ins. Try again later."),
                      username=username)
    if not username or not password:
        return render(request, "board_login.html", 422, error=_("Enter your username and password."),
                      username=username)
    db = request.app.state.db

    def check() -> User | None:
        with db.session() as session:
            found = authenticate(session, username, password)
            if found is not None:
                session.expunge(found)
            return found

    user = await db.run(check)
    if user is None:
        if throttle:
            throttle.failure(keys)
        return render(request, "board_login.html", 401, error=_("Wrong username or password."), username=username)
    if throttle:
        throttle.success(username)
    if user.role is not Role.SPOKESPERSON or user.department_id is None:
        return render(request, "board_login.html", 403, error=_("This account is not a unit's spokesperson."),
                      username=username)
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"uid": user.id, "at": int(_now().timestamp())})
    if lang:
        request.session["lang"] = lang
    return RedirectResponse("/desk/board/", status_code=303)


@spokes.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return RedirectResponse("/desk/board/login", status_code=303)


async def _unit_page(request: Request, user: User, *, status_code: int = 200, error: dict | None = None,
                     message: str | None = None) -> Response:
    db = request.app.state.db
    config = request.app.state.config
    locale = request_locale(request)

    def work() -> dict:
        with db.session(readonly=True) as session:
            posts, total = board.list_posts(session, user.department.code, limit=200)
            units = [(d.code, d.name) for d in session.scalars(
                select(Department).where(Department.retired_at.is_(None), Department.id != user.department_id)
                .order_by(Department.code))]
            return {"threads": [board.post_view(p, public_url=config.web.public_url, zone=config.site.zone,
                                                locale=locale) for p in posts], "total": total, "units": units}

    data = await db.run(work)
    return render(request, "board_unit.html", status_code, user=user, unit_name=user.department.name,
                  error=error, message=message, **data)


@spokes.get("/")
async def unit_board(request: Request, user: User = Depends(spokesperson)) -> Response:
    done = request.query_params.get("done")
    locale = request_locale(request)
    message = (ZH["Done."] if locale == "zh_CN" else "Done.") if done else None
    return await _unit_page(request, user, message=message)


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
    _view, error = await act(request, action, locale=request_locale(request))
    if error is not None:
        return await _unit_page(request, user, status_code=error.status, error={
            "post": post_id, "field": error.field, "message": error.message(request_locale(request)),
            "values": {k: str(v) for k, v in form.items() if k != CSRF_FIELD}})
    return RedirectResponse(f"/desk/board/?done={verb}#post-{post_id}", status_code=303)


@spokes.post("/posts/{post_id}/{verb}", dependencies=[Depends(check_csrf)])
async def post_action(request: Request, post_id: int, verb: str, user: User = Depends(spokesperson)) -> Response:
    if verb not in ("accept", "forward", "answer"):
        return Response(status_code=404)
    return await _do(request, user, post_id, verb)


def mount_board(app: FastAPI) -> None:
    """Add the public board and the spokesperson pages (after ``mount_desk``)."""
    app.include_router(public)
    app.include_router(spokes)

    @app.get("/board", include_in_schema=False)
    async def board_root() -> Response:
        return RedirectResponse("/board/", status_code=307)


__all__ = ["mount_board"]
