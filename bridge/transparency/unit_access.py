"""Who sees which unit's figures: supervisors and admins every unit, a spokesperson their own
(``User.department_id``); everyone else none (operators see their own figures elsewhere)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.db.models import Department, Role, User

EVERY_UNIT = None
VIEWERS = (Role.SUPERVISOR, Role.ADMIN, Role.SPOKESPERSON)


class UnitRefused(Exception):
    """The user may not see the units' figures, or not this unit's."""


def unit_scope(session: Session, user: User) -> str | None:
    """:data:`EVERY_UNIT` for supervisors and admins, a spokesperson's unit code; else :class:`UnitRefused`."""
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return EVERY_UNIT
    code = None
    if user.role is Role.SPOKESPERSON and user.department_id is not None:
        code = session.scalar(select(Department.code).where(Department.id == user.department_id))
    if code is None:
        raise UnitRefused()
    return code


def may_see(scope: str | None, code: str) -> bool:
    return scope is EVERY_UNIT or scope == code


__all__ = ["EVERY_UNIT", "VIEWERS", "UnitRefused", "may_see", "unit_scope"]
