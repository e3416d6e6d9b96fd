"""The one rule of a take of a call (``calls.taken_by_id``): once the shared "to call back / to
file" list's, now set when an operator takes a missed call's callback task on the queue.

While the take *holds*, nobody else files a case from the call; it holds for
``TAKEN_EXPIRES_AFTER``, after which the call is free again, so a taker who went home does not
keep it.  A take without a time (rows from before takes were timed) holds.  The rule is one SQL
condition, :func:`take_holds`, used by filing (:func:`bridge.cases.service.taken_by_someone_else`).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from bridge.db.models import Call, User

TAKEN_EXPIRES_AFTER = timedelta(hours=2)


def take_holds(now: datetime) -> ColumnElement[bool]:
    """SQL: the call (``Call``) is taken and the take still holds at ``now``."""
    return and_(Call.taken_by_id.is_not(None),
                or_(Call.taken_at.is_(None), Call.taken_at >= now - TAKEN_EXPIRES_AFTER))


def holder(session: Session, call_id: int, now: datetime) -> User | None:
    """Who holds the call at ``now`` (None: not taken, or the take has expired)."""
    return session.scalar(select(User).join(Call, Call.taken_by_id == User.id)
                          .where(Call.id == call_id, take_holds(now)))


__all__ = ["TAKEN_EXPIRES_AFTER", "holder", "take_holds"]
