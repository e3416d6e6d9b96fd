"""Who may use the desk's pages: the signed-in operator, supervisor or admin (session sign-in of the
shared web layer, :func:`bridge.web.sessions.session_user`), as route dependencies.

``SignInRequired`` sends the browser to the sign-in page (htmx and SSE requests get 401 with
``HX-Redirect``); ``RoleRefused`` answers 403.  Both are answered by the handlers that
:func:`bridge.desk.mount.mount_desk` registers.
"""
from __future__ import annotations

from fastapi import Depends, Request

from bridge.db.models import Role
from bridge.desk.queries import DESK_ROLES, DeskUser
from bridge.web.sessions import session_user


class SignInRequired(Exception):
    pass


class RoleRefused(Exception):
    pass


async def current_user(request: Request) -> DeskUser:
    """The signed-in desk user (operator, supervisor or admin), read again from the database."""
    if not request.session.get("uid"):
        raise SignInRequired()
    user = await session_user(request)
    if user is None:
        request.session.clear()
        raise SignInRequired()
    if user.role not in DESK_ROLES:
        raise RoleRefused()
    return DeskUser(id=user.id, username=user.username, display_name=user.display_name or user.username,
                    role=user.role, extension=request.session.get("ext") or None)


async def admin_user(user: DeskUser = Depends(current_user)) -> DeskUser:
    if user.role is not Role.ADMIN:
        raise RoleRefused()
    return user
