"""Desk sign-ins for tests that need an operator at their desk (bridge.presence): a task's owner
has their turn only while signed in; signed out, the pool has it at once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bridge.db.models import User
from bridge.presence.service import open_session


def sign_in_at_desk(db, username: str, at: datetime, extension: str | None = None) -> str:
    """Sign ``username`` in to the desk at ``at``; the sign-in's token."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        return open_session(session, user, extension, at).token
