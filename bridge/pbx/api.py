"""GET /api/v1/calls: the call log as JSON, for supervisors' tools (API token auth)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from bridge.db.models import Call, CallDisposition, Role, User
from bridge.pbx.waits import menu_and_queue
from bridge.web.auth import require_role
from bridge.web.paging import PageNumber

# Callers' numbers are private to the hotline: units' spokespeople never see them.
hotline_staff = require_role(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)

router = APIRouter(prefix="/api/v1", tags=["calls"])

DispositionFilter = Enum("DispositionFilter", {d.value: d.value for d in CallDisposition}, type=str)


class CallOut(BaseModel):
    linkedid: str
    caller_number: str
    caller_name: str
    dialled_number: str
    arrived_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    menu_s: float | None = Field(description="seconds from the arrival to joining the queue (greeting and menu)")
    queue_wait_s: float | None = Field(description="seconds in the operator queue, to the answer or to leaving it")
    talk_s: float | None
    operator: str | None
    extension: str | None
    hangup_cause: int | None
    hangup_cause_text: str | None
    disposition: str
    recording: str | None
    message_file: str | None
    source: str


class CallPage(BaseModel):
    calls: list[CallOut]
    page: int
    per_page: int
    total: int


def _row(call: Call, zone) -> CallOut:
    local = lambda t: t.astimezone(zone) if t else None  # noqa: E731 - times in the site's zone
    return CallOut(
        linkedid=call.linkedid, caller_number=call.caller_number, caller_name=call.caller_name,
        dialled_number=call.dialled_number, arrived_at=local(call.arrived_at),
        answered_at=local(call.answered_at), ended_at=local(call.ended_at),
        menu_s=menu_and_queue(call.arrived_at, call.queue_wait_s, call.answered_at, call.ended_at)[0],
        queue_wait_s=call.queue_wait_s, talk_s=call.talk_s,
        operator=call.operator.username if call.operator else None, extension=call.extension,
        hangup_cause=call.hangup_cause, hangup_cause_text=call.hangup_cause_text,
        disposition=call.disposition.value, recording=call.recording, message_file=call.message_file,
        source=call.source,
    )


def _query(session: Session, zone, *, since, until, caller, operator, disposition, page, per_page) -> CallPage:
    conditions = []
    if since is not None:
        conditions.append(Call.arrived_at >= since)
    if until is not None:
        conditions.append(Call.arrived_at < until)
    if caller:
        conditions.append(Call.caller_number == caller)
    if operator:
        user_ids = select(User.id).where(User.username == operator).scalar_subquery()
        conditions.append(or_(Call.operator_id == user_ids, Call.extension == operator))
    if disposition is not None:
        conditions.append(Call.disposition == CallDisposition(disposition.value))
    total = session.scalar(select(func.count()).select_from(Call).where(*conditions))
    calls = session.scalars(
        select(Call).options(joinedload(Call.operator)).where(*conditions)
        .order_by(Call.arrived_at.desc(), Call.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return CallPage(calls=[_row(c, zone) for c in calls], page=page, per_page=per_page, total=total)


@router.get("/calls", response_model=CallPage, summary="The call log, newest first")
async def list_calls(
    request: Request,
    _user: Annotated[User, Depends(hotline_staff)],
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset: calls that arrived at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset: calls that arrived before")] = None,
    caller: Annotated[str | None, Query(max_length=32, description="exact caller number")] = None,
    operator: Annotated[str | None, Query(max_length=64, description="operator username or extension")] = None,
    disposition: Annotated[DispositionFilter | None, Query()] = None,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CallPage:
    if since and until and since >= until:
        raise HTTPException(422, [{"loc": ["query", "until"], "msg": "until must be after since",
                                   "type": "value_error"}])
    db = request.app.state.db
    zone = request.app.state.config.site.zone

    def work() -> CallPage:
        with db.session() as session:
            return _query(session, zone, since=since, until=until, caller=caller, operator=operator,
                          disposition=disposition, page=page, per_page=per_page)

    return await db.run(work)
