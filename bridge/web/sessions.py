"""Session sign-in for the pages (the desk's and the spokespeople's): one signed cookie per browser.

Sessions are Starlette's signed cookies (``itsdangerous``): the cookie holds the session dict,
signed with the key from ``config.secret(config.web.session_secret_env)``; it is HttpOnly,
SameSite=Lax, Secure when ``web.secure_cookies`` is true, and scoped to ``SESSION_PATH`` (the
pages that sign in live under it).  The session holds the user's id, what a capability adds
(the desk: the extension chosen at sign-in), the page language and the CSRF token; the user row
is read again on every request (:func:`session_user`), so a disabled user or a changed role
takes effect at once.  :func:`page_user` is the check a page's dependency makes: it raises
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

from bridge.config import Config
from bridge.db.models import Role, User

SESSION_COOKIE = "hotline_desk"
SESSION_PATH = "/desk"
SESSION_MAX_AGE_S = 12 * 3600  # one long shift


def add_sessions(app: FastAPI, config: Config) -> None:
    """The session middleware (before the app starts)."""
    app.add_middleware(SessionMiddleware, secret_key=config.secret(config.web.session_secret_env),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S, path=SESSION_PATH,
                       same_site="lax", https_only=config.web.secure_cookies)


def _load_user(db, user_id: int) -> User | None:
    with db.session(readonly=True) as session:
        user = session.scalar(select(User).options(joinedload(User.department)).where(User.id == user_id))
        if user is None or user.disabled_at is not None:
            return None
        session.expunge_all()
        return user


async def session_user(request: Request) -> User | None:
    """The signed-in user (with the unit), read again now; None when signed out, unknown or disabled."""
    user_id = request.session.get("uid") if "session" in request.scope else None
    if not isinstance(user_id, int):
        return None
    db = request.app.state.db
    return await db.run(_load_user, db, user_id)


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


def start_session(request: Request, user: User, **values: Any) -> None:
    """Sign in: a fresh session (and so a fresh CSRF token) for ``user``, keeping the page language."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"uid": user.id, "at": int(datetime.now(timezone.utc).timestamp()), **values})
    if lang:
        request.session["lang"] = lang


def end_session(request: Request) -> None:
    """Sign out: forget everything in the session but the page language."""
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


__all__ = ["SESSION_COOKIE", "SESSION_MAX_AGE_S", "SESSION_PATH", "RoleRefused", "SignInRequired", "add_sessions",
           "end_session", "page_user", "session_user", "signed_in", "start_session"]
