"""Desk sessions and queue presence in the database (plain synchronous functions on a session;
they commit nothing).

A sign-in to the pages is a ``desk_sessions`` row (:class:`bridge.db.models.DeskSession`); the
signed cookie carries its random token.  A row is **active** while it has no ``ended_at``, is less
than :data:`SESSION_MAX_AGE` old and its user is not disabled; the daemon's sweep
(:func:`sweep`) also writes the end of expired rows and disabled users' rows, but every query
here applies the same rule itself, so an end takes effect at once whoever forgot to write it.

An active row with an extension whose desk page was seen (its live stream touches
``last_seen_at``, :func:`touch`) within ``timeout_s`` (``[desk] presence_timeout_s``) is
**present**: that extension belongs in the operator queue (:func:`desired_members`), paused when
``paused_reason`` is set.  Not seen for longer: **away**, out of the queue, still signed in.

For other capabilities (e.g. callbacks: "the owner signed out, the task goes to the pool"):

* :func:`present_user_ids(session, now) <present_user_ids>` -> ``set[int]``: users with a present
  session (in the queue now, paused or not);
* :func:`signed_in_user_ids(session, now) <signed_in_user_ids>` -> ``set[int]``: users with an
  active session, present or away.

Both take ``timeout_s=`` (default :data:`DEFAULT_TIMEOUT_S`; pass ``config.desk.presence_timeout_s``).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bridge.db.models import CallbackAttempt, DeskSession, DeskSessionEnd, PauseReason, User

log = structlog.get_logger(__name__)

SESSION_MAX_AGE = timedelta(hours=12)   # one long shift (the cookie's max age too)
DEFAULT_TIMEOUT_S = 120.0


class ExtensionTaken(Exception):
    """Another user holds the extension in an active session."""

    def __init__(self, extension: str, holder: User):
        # plain values: the exception outlives the session the holder was read in
        self.extension, self.holder_username = extension, holder.username
        self.holder_name = holder.display_name or holder.username
        super().__init__(f"extension {extension} is in use by {holder.username}")


class NotSignedIn(Exception):
    """No active desk session with an extension (nothing to pause or resume)."""


def _active(now: datetime):
    return (DeskSession.ended_at.is_(None), DeskSession.started_at > now - SESSION_MAX_AGE,
            User.disabled_at.is_(None))


def _active_rows(session: Session, now: datetime, *conditions) -> list[DeskSession]:
    query = (select(DeskSession).join(User, User.id == DeskSession.user_id).options(joinedload(DeskSession.user))
             .where(*_active(now), *conditions).order_by(DeskSession.id))
    return list(session.scalars(query))


def _present(now: datetime, timeout_s: float):
    return (DeskSession.extension.is_not(None), DeskSession.last_seen_at >= now - timedelta(seconds=timeout_s))


def open_session(session: Session, user: User, extension: str | None, now: datetime) -> DeskSession:
    """Sign ``user`` in (at ``extension``): a new row; the user's older active sessions end as
    ``replaced``.  Raise :class:`ExtensionTaken` when another user's active session holds it."""
    if extension:
        held = _active_rows(session, now, DeskSession.extension == extension, DeskSession.user_id != user.id)
        if held:
            raise ExtensionTaken(extension, held[0].user)
    for older in _active_rows(session, now, DeskSession.user_id == user.id):
        _end(older, now, DeskSessionEnd.REPLACED)
    row = DeskSession(token=secrets.token_urlsafe(32), user_id=user.id, extension=extension or None,
                      started_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    log.info("presence.signed_in", user_id=user.id, username=user.username, extension=row.extension,
             desk_session=row.id)
    return row


def _end(row: DeskSession, now: datetime, reason: DeskSessionEnd, by: int | None = None) -> None:
    row.ended_at, row.end_reason, row.ended_by_id = now, reason, by
    log.info("presence.session_ended", user_id=row.user_id, extension=row.extension, desk_session=row.id,
             reason=reason.value, by=by)


def active_session(session: Session, token: str | None, now: datetime) -> DeskSession | None:
    """The active row of ``token`` (with its user), or None: signed out, expired, disabled, unknown."""
    if not token:
        return None
    rows = _active_rows(session, now, DeskSession.token == token)
    return rows[0] if rows else None


def end_session(session: Session, token: str, now: datetime,
                reason: DeskSessionEnd = DeskSessionEnd.SIGNED_OUT) -> DeskSession | None:
    """Sign out the session of ``token`` (nothing when it had ended already)."""
    row = session.scalar(select(DeskSession).where(DeskSession.token == token, DeskSession.ended_at.is_(None)))
    if row is not None:
        _end(row, now, reason)
        session.flush()
    return row


def end_by_supervisor(session: Session, session_id: int, supervisor_id: int, now: datetime) -> SessionView | None:
    """A supervisor signs an operator out: the session as it was; None when it is not active."""
    rows = _active_rows(session, now, DeskSession.id == session_id)
    if not rows:
        return None
    view = _view(rows[0], now, DEFAULT_TIMEOUT_S)
    _end(rows[0], now, DeskSessionEnd.ENDED_BY_SUPERVISOR, by=supervisor_id)
    session.flush()
    return view


@dataclass(frozen=True)
class Touched:
    active: bool   # False: the session ended (the page is signed out)
    came_back: bool = False   # it had been away: back in the queue now


def touch(session: Session, token: str, now: datetime, timeout_s: float = DEFAULT_TIMEOUT_S) -> Touched:
    """The session's desk page is alive (its live stream is open)."""
    row = active_session(session, token, now)
    if row is None:
        return Touched(False)
    came_back = row.extension is not None and row.last_seen_at < now - timedelta(seconds=timeout_s)
    row.last_seen_at = now
    session.flush()
    if came_back:
        log.info("presence.back", user_id=row.user_id, extension=row.extension, desk_session=row.id)
    return Touched(True, came_back)


def _queue_row(session: Session, token: str, now: datetime) -> DeskSession:
    row = active_session(session, token, now)
    if row is None or row.extension is None:
        raise NotSignedIn()
    return row


def pause(session: Session, token: str, reason: PauseReason | str, now: datetime) -> DeskSession:
    """The operator pauses (no queue call is offered) for ``reason``; raise :class:`NotSignedIn`
    without an active session at an extension, ValueError for an unknown reason."""
    reason = PauseReason(reason)
    row = _queue_row(session, token, now)
    if row.paused_reason is not reason or row.paused_auto:
        row.paused_reason, row.paused_at, row.paused_auto = reason, now, False
        session.flush()
        log.info("presence.paused", user_id=row.user_id, extension=row.extension, reason=reason.value)
    return row


def resume(session: Session, token: str, now: datetime) -> DeskSession:
    """The operator takes queue calls again."""
    row = _queue_row(session, token, now)
    _resume(row)
    session.flush()
    return row


def _resume(row: DeskSession) -> None:
    if row.paused_reason is not None:
        log.info("presence.resumed", user_id=row.user_id, extension=row.extension, reason=row.paused_reason.value,
                 automatic=row.paused_auto)
    row.paused_reason, row.paused_at, row.paused_auto = None, None, False


def pause_for_callback(session: Session, user_id: int, now: datetime) -> bool:
    """The operator places a callback: paused automatically (reason callback) unless already paused
    (a pause of their own stays theirs).  True when a pause was made."""
    changed = False
    for row in _active_rows(session, now, DeskSession.user_id == user_id, DeskSession.extension.is_not(None)):
        if row.paused_reason is None:
            row.paused_reason, row.paused_at, row.paused_auto = PauseReason.CALLBACK, now, True
            changed = True
            log.info("presence.paused", user_id=user_id, extension=row.extension, reason="callback", automatic=True)
    session.flush()
    return changed


def callback_pauses(session: Session, now: datetime) -> list[DeskSession]:
    """Active sessions paused automatically for a callback."""
    return _active_rows(session, now, DeskSession.paused_auto.is_(True))


def has_open_callback(session: Session, user_id: int) -> bool:
    """Whether an attempt the user placed is still dialling (no result yet)."""
    return session.scalar(select(CallbackAttempt.id).where(
        CallbackAttempt.operator_id == user_id, CallbackAttempt.ended_at.is_(None)).limit(1)) is not None


def resume_after_callback(session: Session, session_id: int) -> bool:
    """Lift the automatic callback pause of one session (a pause of the operator's own stays)."""
    row = session.get(DeskSession, session_id)
    if row is None or not row.paused_auto or row.ended_at is not None:
        return False
    _resume(row)
    session.flush()
    return True


def sweep(session: Session, now: datetime) -> list[DeskSession]:
    """Write the end of sessions past :data:`SESSION_MAX_AGE` (expired) and of disabled users'
    (the CLI disables in another process); returns the rows ended."""
    ended = []
    rows = session.scalars(select(DeskSession).join(User, User.id == DeskSession.user_id)
                           .options(joinedload(DeskSession.user)).where(DeskSession.ended_at.is_(None)))
    for row in rows:
        if row.user.disabled_at is not None:
            _end(row, now, DeskSessionEnd.DISABLED)
        elif row.started_at <= now - SESSION_MAX_AGE:
            _end(row, now, DeskSessionEnd.EXPIRED)
        else:
            continue
        ended.append(row)
    session.flush()
    return ended


def present_user_ids(session: Session, now: datetime, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> set[int]:
    """Users with a present session: signed in at an extension, desk page seen within ``timeout_s``."""
    query = (select(DeskSession.user_id).join(User, User.id == DeskSession.user_id)
             .where(*_active(now), *_present(now, timeout_s)))
    return set(session.scalars(query))


def signed_in_user_ids(session: Session, now: datetime) -> set[int]:
    """Users with an active session (present or away, with or without an extension)."""
    query = select(DeskSession.user_id).join(User, User.id == DeskSession.user_id).where(*_active(now))
    return set(session.scalars(query))


@dataclass(frozen=True)
class DesiredMember:
    """A queue member the sessions call for."""

    interface: str          # PJSIP/8001
    name: str               # the operator's display name (MemberName)
    paused: bool
    reason: str             # the pause reason ("" when not paused)
    user_id: int


def interface_of(extension: str) -> str:
    return f"PJSIP/{extension}"


def desired_members(session: Session, now: datetime, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[DesiredMember]:
    """The operator queue as the present sessions call for it (one member per extension)."""
    out: dict[str, DesiredMember] = {}
    for row in _active_rows(session, now, *_present(now, timeout_s)):
        user = row.user
        out[row.extension] = DesiredMember(
            interface_of(row.extension), user.display_name or user.username, row.paused_reason is not None,
            row.paused_reason.value if row.paused_reason else "", user.id)
    return list(out.values())


@dataclass(frozen=True)
class SessionView:
    """One active session as the desk shows it."""

    id: int
    user_id: int
    username: str
    name: str
    extension: str | None
    started_at: datetime
    last_seen_at: datetime
    present: bool
    paused_reason: str | None
    paused_at: datetime | None
    paused_auto: bool


def _view(row: DeskSession, now: datetime, timeout_s: float) -> SessionView:
    user = row.user
    present = row.extension is not None and row.last_seen_at >= now - timedelta(seconds=timeout_s)
    return SessionView(row.id, row.user_id, user.username, user.display_name or user.username, row.extension,
                       row.started_at, row.last_seen_at, present,
                       row.paused_reason.value if row.paused_reason else None, row.paused_at, row.paused_auto)


def session_views(session: Session, now: datetime, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[SessionView]:
    """Every active session, by extension then name (the supervisors' page)."""
    views = [_view(row, now, timeout_s) for row in _active_rows(session, now)]
    return sorted(views, key=lambda v: (v.extension is None, v.extension or "", v.name))


def my_session(session: Session, token: str | None, now: datetime, *,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> SessionView | None:
    row = active_session(session, token, now)
    return _view(row, now, timeout_s) if row is not None else None


def extension_holders(session: Session, now: datetime) -> dict[str, str]:
    """Extension -> the display name of who holds it in an active session."""
    return {row.extension: row.user.display_name or row.user.username
            for row in _active_rows(session, now, DeskSession.extension.is_not(None))}

