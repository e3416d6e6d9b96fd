"""Session sign-in for the pages (the desk's and the spokespeople's): one signed cookie per browser.

Sessions are Starlette's signed cookies (``itsdangerous``): the cookie holds the session dict,
signed with the key from ``config.secret(config.web.session_secret_env)``; it is HttpOnly,
SameSite=Lax, Secure when ``web.secure_cookies`` is true, and scoped to ``SESSION_PATH`` (the
pages that sign in live under it).  The session holds the user's id, the token of its
server-side row (``desk_sessions``, :mod:`bridge.presence.service`), what a capability adds
(the desk: the extension chosen at sign-in), the page language and the CSRF token.  The row and
the user are read again on every request (:func:`session_user`), so a sign-out elsewhere (a
supervisor, a newer sign-in of the same user, the 12-hour limit), a disabled user or a changed
role takes effect at once.  :func:`start_session` refuses an extension another user holds
(:class:`bridge.presence.service.ExtensionTaken`).  :func:`page_user` is the check a page's dependency makes: it raises
:class:`SignInRequired` or :class:`RoleRefused`, answered by the handlers of the capability
whose pages they are (the desk's sends the browser to its sign-in page).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send

from bridge.config import Config
from bridge.db.models import Role, User

SESSION_COOKIE = "hotline_desk"
SESSION_PATH = "/desk"
SESSION_MAX_AGE_S = 12 * 3600  # one long shift


class ScopedSessionMiddleware(SessionMiddleware):
    """Starlette's sessions, kept to the paths the cookie is sent to.  Elsewhere (``/board``,
    ``/transparency``) the browser sends no cookie, so a page there that wrote to its session
    (a CSRF token) would send back a new, empty cookie for ``/desk`` and sign the user out."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else None
        if path is not None and not (path == self.path or path.startswith(self.path.rstrip("/") + "/")):
            scope["session"] = {}  # this request's own, never sent back
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def add_sessions(app: FastAPI, config: Config) -> None:
    """The session middleware (before the app starts)."""
    app.add_middleware(ScopedSessionMiddleware, secret_key=config.secret(config.web.session_secret_env),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S, path=SESSION_PATH,
                       same_site="lax", https_only=config.web.secure_cookies)


def _load_user(db, user_id: int, token: str) -> User | None:
    from bridge.presence.service import active_session

    with db.session(readonly=True) as session:
        row = active_session(session, token, _now())
        if row is None or row.user_id != user_id:
            return None
        user = session.scalar(select(User).options(joinedload(User.department)).where(User.id == user_id))
        session.expunge_all()
        return user


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def session_user(request: Request) -> User | None:
    """The signed-in user (with the unit), read again now; None when signed out (here or on the
    server side), expired, unknown or disabled."""
    user_id = request.session.get("uid") if "session" in request.scope else None
    token = request.session.get("sid") if "session" in request.scope else None
    if not isinstance(user_id, int) or not isinstance(token, str):
        return None
    db = request.app.state.db
    return await db.run(_load_user, db, user_id, token)


def signed_in(request: Request) -> bool:
    """Whether the request carries a signed-in session (its cookie is sent under ``/desk`` only).

    Not read again from the database: an error page only chooses its links with it (the way
    back for a signed-in person, the sign-in page for others)."""
    return "session" in request.scope and isinstance(request.session.get("uid"), int)


class SignInRequired(Exception):
    pass


class RoleRefused(Exception):
    pass


async def page_user(request: Request, roles: Iterable[Role]) -> User:
    """The signed-in user, read again now, if their role is one of ``roles``; else raise
    :class:`SignInRequired` (signed out, unknown, disabled: the session is cleared) or :class:`RoleRefused`."""
    if not request.session.get("uid"):
        raise SignInRequired()
    user = await session_user(request)
    if user is None:
        request.session.clear()
        raise SignInRequired()
    if user.role not in tuple(roles):
        raise RoleRefused()
    return user


def _open(db, user: User, extension: str | None) -> str:
    from bridge.presence.service import open_session

    with db.session() as session:
        return open_session(session, session.get(User, user.id), extension, _now()).token


def _close(db, token: str) -> None:
    from bridge.presence.service import end_session as end_row

    with db.session() as session:
        end_row(session, token, _now())


def _changed(request: Request, kind: str, user_id: int) -> None:
    """Tell the daemon's parts (queue presence) and the pages that a sign-in began or ended."""
    from bridge.live import LiveEvent

    live = getattr(request.app.state, "live", None)
    if live is not None:
        live.publish(LiveEvent("presence", kind, {"user_id": user_id}))


async def start_session(request: Request, user: User, *, extension: str | None = None, **values: Any) -> None:
    """Sign in: a server-side row and a fresh cookie session (and so a fresh CSRF token) for
    ``user`` at ``extension``, keeping the page language; the user's older sign-in ends.  Raise
    :class:`bridge.presence.service.ExtensionTaken` (nothing changed) when another user holds it."""
    db = request.app.state.db
    token = await db.run(_open, db, user, extension)
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"uid": user.id, "sid": token, "at": int(_now().timestamp()),
                            **({"ext": extension} if extension else {}), **values})
    if lang:
        request.session["lang"] = lang
    _changed(request, "signed_in", user.id)


async def end_session(request: Request) -> None:
    """Sign out: the server-side row ends; forget everything in the session but the page language."""
    token, user_id = request.session.get("sid"), request.session.get("uid")
    if isinstance(token, str):
        db = request.app.state.db
        await db.run(_close, db, token)
        _changed(request, "signed_out", user_id)
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


__all__ = ["SESSION_COOKIE", "SESSION_MAX_AGE_S", "SESSION_PATH", "RoleRefused", "SignInRequired", "add_sessions",
           "end_session", "page_user", "session_user", "signed_in", "start_session"]
