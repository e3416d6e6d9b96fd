"""Who sees the reports' desk pages, and what: supervisors and admins every case, an operator the
cases they filed, a spokesperson nothing (refused 403; signed out: to the sign-in page)."""
from __future__ import annotations

from fastapi import Request

from bridge.db.models import Role
from bridge.desk.queries import DeskUser, desk_user
from bridge.reports.callback_log import LogFilter
from bridge.web.sessions import page_user

VIEWERS = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
LOG_PATH = "/desk/reports/callbacks"  # the callback completion log (bridge/reports/pages.py)


async def current_user(request: Request) -> DeskUser:
    return desk_user(await page_user(request, VIEWERS), request.session)


def limited_to_viewer(flt: LogFilter, user: DeskUser) -> LogFilter:
    """An operator's figures and log hold only the cases they filed."""
    if user.role is Role.OPERATOR:
        return LogFilter(**{**flt.__dict__, "own_cases_of": user.id})
    return flt
