"""Queue presence in the JSON API (API-token auth).

- ``GET /api/v1/queue`` (supervisors, admins): the operators signed in (extension, present or
  away, paused with reason and since when, the phone's state) and the callers waiting.
- ``POST /api/v1/presence/pause`` ``{"reason": "break" | "callback" | "training"}`` and
  ``POST /api/v1/presence/resume``: the token's user pauses or resumes their desk sign-in
  (409 when they are not signed in at an extension).
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from bridge.db.models import DeskSession, PauseReason, Role, User, utcnow
from bridge.live import LiveEvent
from bridge.presence import service
from bridge.presence.link import LIVE_TOPIC
from bridge.web.auth import require_role

router = APIRouter(prefix="/api/v1", tags=["presence"])
hotline_staff = require_role(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
supervisors = require_role(Role.SUPERVISOR, Role.ADMIN)

Reason = Enum("Reason", {r.value: r.value for r in PauseReason}, type=str)


class OperatorOut(BaseModel):
    username: str
    name: str
    extension: str | None
    signed_in_at: datetime
    present: bool  # the desk page was seen lately (else away: out of the queue)
    in_queue: bool  # Asterisk has the extension as a member now
    paused_reason: str | None
    paused_at: datetime | None
    paused_automatically: bool
    phone_state: str | None  # free, in_call, ringing, busy, unavailable, ... (None: not a member)


class CallerOut(BaseModel):
    number: str
    name: str
    waiting_since: datetime


class QueueOut(BaseModel):
    queue: str
    pbx_connected: bool
    operators: list[OperatorOut]
    callers: list[CallerOut]


class PauseIn(BaseModel):
    reason: Reason


class PresenceOut(BaseModel):
    extension: str
    paused_reason: str | None
    paused_at: datetime | None


def _link(request: Request):
    runtime = getattr(request.app.state, "runtime", None)
    return runtime.links.get("presence") if runtime is not None else None


@router.get("/queue", response_model=QueueOut, summary="The operator queue now (supervisors)")
async def queue(request: Request, _user: User = Depends(supervisors)) -> QueueOut:
    db = request.app.state.db
    views = await db.run_in_session(service.session_views, utcnow(),
                                    timeout_s=float(request.app.state.config.desk.presence_timeout_s), readonly=True)
    link = _link(request)
    members = link.board.members if link is not None else {}
    operators = []
    for v in views:
        member = members.get(service.interface_of(v.extension)) if v.extension else None
        operators.append(OperatorOut(username=v.username, name=v.name, extension=v.extension,
                                     signed_in_at=v.started_at, present=v.present, in_queue=member is not None,
                                     paused_reason=v.paused_reason, paused_at=v.paused_at,
                                     paused_automatically=v.paused_auto,
                                     phone_state=member.state if member is not None else None))
    callers = [CallerOut(number=c.number, name=c.name, waiting_since=c.joined_at)
               for c in (link.board.waiting() if link is not None else [])]
    return QueueOut(queue=request.app.state.config.pbx.queue, pbx_connected=bool(link and link.board.loaded),
                    operators=operators, callers=callers)


def _user_session(session, user_id: int, now: datetime) -> DeskSession:
    rows = [row for row in service.session_views(session, now) if row.user_id == user_id and row.extension]
    if not rows:
        raise service.NotSignedIn()
    return session.get(DeskSession, rows[0].id)


def _pause(session, user_id: int, reason: str | None, now: datetime) -> PresenceOut:
    row = _user_session(session, user_id, now)
    row = service.pause(session, row.token, reason, now) if reason else service.resume(session, row.token, now)
    return PresenceOut(extension=row.extension, paused_reason=row.paused_reason.value if row.paused_reason else None,
                       paused_at=row.paused_at)


async def _change(request: Request, user: User, reason: str | None) -> PresenceOut:
    db = request.app.state.db
    try:
        out = await db.run_in_session(_pause, user.id, reason, utcnow())
    except service.NotSignedIn:
        raise HTTPException(409, "not signed in to the desk at an extension: sign in at /desk/login first") from None
    request.app.state.live.publish(LiveEvent(LIVE_TOPIC, "paused" if reason else "resumed", {"user_id": user.id}))
    return out


@router.post("/presence/pause", response_model=PresenceOut, summary="Pause: no queue call is offered to me")
async def pause(body: PauseIn, request: Request, user: User = Depends(hotline_staff)) -> PresenceOut:
    return await _change(request, user, body.reason.value)


@router.post("/presence/resume", response_model=PresenceOut, summary="Resume taking queue calls")
async def resume(request: Request, user: User = Depends(hotline_staff)) -> PresenceOut:
    return await _change(request, user, None)
