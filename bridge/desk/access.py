"""Who may use the desk's pages: the signed-in operator, supervisor or admin (session sign-in of the
shared web layer, :func:`bridge.web.sessions.page_user`), as route dependencies.

``SignInRequired`` sends the browser to the sign-in page (htmx and SSE requests get 401 with
``HX-Redirect``); ``RoleRefused`` answers 403.  Both are answered by the handlers that
:func:`bridge.desk.mount.mount_desk` registers (for other capabilities' desk pages too).
"""
from __future__ import annotations

from fastapi import Depends, Request

from bridge.db.models import Role
from bridge.desk.queries import DESK_ROLES, DeskUser, desk_user
from bridge.web.sessions import RoleRefused, SignInRequired, page_user


async def current_user(request: Request) -> DeskUser:
    """The signed-in desk user (operator, supervisor or admin), read again from the database."""
    return desk_user(await page_user(request, DESK_ROLES), request.session)


async def admin_user(user: DeskUser = Depends(current_user)) -> DeskUser:
    if user.role is not Role.ADMIN:
        raise RoleRefused()
    return user


__all__ = ["RoleRefused", "SignInRequired", "admin_user", "current_user"]
