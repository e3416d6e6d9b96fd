"""The builtin board's JSON API (``/api/v1/board``), for spokespeople's tools and tests.

Bearer tokens (``hotline-bridge token create USER``).  Reading is open to every
token (the board is public anyway); acting is for users with the role
``spokesperson``, on posts on their own unit's board only (else 403).

- ``GET  /api/v1/board/posts?unit=CODE&state=&page=&per_page=`` threads, newest first
- ``GET  /api/v1/board/posts/{id}``                    one thread with its replies
- ``POST /api/v1/board/posts/{id}/accept``             受理 (blue -> green)
- ``POST /api/v1/board/posts/{id}/forward``            ``{"to_department": CODE, "note": TEXT}``; note required
- ``POST /api/v1/board/posts/{id}/answer``             ``{"text": TEXT}`` (the answer, or a follow-up's answer)

Errors: 422 ``{"detail": [{"field", "message", "code"}]}`` (as the cases API);
403/404/409 ``{"detail": message, "code": code}``; messages in Chinese, or English
when ``Accept-Language`` prefers it.  An action answers 200 with the thread.

After an action the thread event is applied to the case at once (its own
transaction; the forum link's polling applies it too, which changes nothing the
second time), and published live: topic ``board`` and topic ``case``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from bridge.config import UNIT_CODE_PATTERN
from bridge.db.models import BoardPostState, User
from bridge.forum import service
from bridge.forum.builtin import board
from bridge.i18n import header_locale as request_locale
from bridge.live import LiveEvent
from bridge.web.auth import api_user
from bridge.web.errors import FIELD_ERRORS_RESPONSE, FieldErrorRoute
from bridge.web.paging import PageNumber, RowId

log = structlog.get_logger(__name__)


# What the board's rules (bridge.forum.builtin.board) enforce, stated in the OpenAPI document;
# the rules themselves answer a breach (422 with the field), not pydantic.
def _text(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "minLength": board.TEXT_MIN, "maxLength": max_length,
                           "pattern": r"^\S(?:[\s\S]*\S)?$"})


class ForwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["to_department", "note"]})
    to_department: Annotated[str | None, WithJsonSchema({"type": "string", "pattern": UNIT_CODE_PATTERN.pattern})] = (
        Field(None, description="the unit's code (from /api/v1/departments), not this unit's"))
    note: Annotated[str | None, _text(board.NOTE_MAX)] = Field(
        None, description="required: tells the poster, in the thread, which unit handles it")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["text"]})
    text: Annotated[str | None, _text(board.ANSWER_MAX)] = Field(None, description="the answer shown in the thread")


class ReplyOut(BaseModel):
    id: int
    kind: str
    author: str
    unit: str | None
    text: str
    created_at: datetime


class PostSummary(BaseModel):
    id: int
    case_number: str
    unit: str
    unit_name: str
    origin_unit: str
    state: str = Field(description="open, accepted, answered or follow_up")
    colour: str = Field(description="blue (未受理, not accepted) or green (已受理, accepted)")
    status: str
    author: str
    title: str
    body: str
    url: str
    created_at: datetime
    updated_at: datetime


class PostOut(PostSummary):
    replies: list[ReplyOut]


class PostPage(BaseModel):
    posts: list[PostSummary]
    page: int
    per_page: int
    total: int


router = APIRouter(prefix="/api/v1/board", tags=["board"], route_class=FieldErrorRoute,
                   responses=FIELD_ERRORS_RESPONSE)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def deadlines_of(app) -> service.DeadlinePolicy:
    """The app's deadline policy (:func:`bridge.forum.service.site_deadlines`)."""
    return service.site_deadlines(app)


def error_response(error: board.BoardError, locale: str) -> JSONResponse:
    message = error.message(locale)
    if error.status == 422:
        return JSONResponse({"detail": [{"field": error.field or "body", "message": message, "code": error.code}]},
                            status_code=422)
    return JSONResponse({"detail": message, "code": error.code}, status_code=error.status)


def _view(request: Request, post, locale: str, replies: bool = True) -> dict[str, Any]:
    config = request.app.state.config
    return board.post_view(post, public_url=config.web.public_url, zone=config.site.zone, locale=locale,
                           replies=replies)


async def act(request: Request, action, *args, locale: str | None = None
              ) -> tuple[dict[str, Any] | None, board.BoardError | None]:
    """Run a board action (``action(session, *args, now)`` -> BoardEvent), then apply its event to the case.

    Returns (thread view, None) or (None, the refusal).  Shared with the spokesperson pages.
    """
    db = request.app.state.db
    locale = locale or request_locale(request)

    def work():
        with db.session() as session:
            event = action(session, *args, _now())
            thread_event = board.thread_event(event)
            return thread_event, _view(request, board.get_post(session, event.post_id), locale)

    try:
        thread_event, view = await db.run(work)
    except board.BoardError as error:
        return None, error
    live = request.app.state.live
    live.publish(LiveEvent("board", thread_event.kind.value, {"post": view["id"], "case_number": view["case_number"],
                                                              "unit": view["unit"], "state": view["state"]}))
    try:
        changes = await db.run_in_session(service.apply_events, [thread_event], deadlines_of(request.app))
    except Exception:  # noqa: BLE001 - the forum link applies it on its next poll
        log.exception("forum.builtin.apply_failed", case_number=view["case_number"])
        changes = []
    for change in changes:
        live.publish(LiveEvent("case", "state_changed", change.live_data()))
    return view, None


@router.get("/posts", response_model=PostPage, summary="Threads of a unit's board (or of all), newest first")
async def list_posts(
    request: Request,
    _user: Annotated[User, Depends(api_user)],
    unit: Annotated[str | None, Query(max_length=32, description="unit code")] = None,
    state: Annotated[str | None, Query(description="open, accepted, answered or follow_up")] = None,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    locale = request_locale(request)
    state_value = None
    if state:
        try:
            state_value = BoardPostState(state.strip())
        except ValueError:
            return JSONResponse({"detail": [{"field": "state", "code": "state_invalid", "message":
                                             ", ".join(s.value for s in BoardPostState)}]}, status_code=422)
    db = request.app.state.db

    def work() -> dict:
        with db.session(readonly=True) as session:
            posts, total = board.list_posts(session, unit, state=state_value, limit=per_page,
                                            offset=(page - 1) * per_page)
            return {"posts": [_view(request, p, locale, replies=False) for p in posts], "page": page,
                    "per_page": per_page, "total": total}

    return await db.run(work)


@router.get("/posts/{post_id}", response_model=PostOut, summary="One thread with its replies")
async def read_post(request: Request, post_id: RowId, _user: Annotated[User, Depends(api_user)]) -> Any:
    db = request.app.state.db
    locale = request_locale(request)

    def work():
        with db.session(readonly=True) as session:
            post = board.get_post(session, post_id)
            return None if post is None else _view(request, post, locale)

    view = await db.run(work)
    if view is None:
        raise HTTPException(404, f"no post {post_id}")
    return view


def _fresh(session, user_id: int) -> User:
    found = session.get(User, user_id)
    assert found is not None
    return found


@router.post("/posts/{post_id}/accept", response_model=PostOut, summary="Accept the post (受理)")
async def accept_post(request: Request, post_id: RowId, user: Annotated[User, Depends(api_user)]) -> Any:
    view, error = await act(request, lambda s, now: board.accept(s, post_id, _fresh(s, user.id), now))
    return error_response(error, request_locale(request)) if error else view


@router.post("/posts/{post_id}/forward", response_model=PostOut,
             summary="Forward the post to another unit, telling the poster which unit handles it")
async def forward_post(request: Request, post_id: RowId, body: Annotated[ForwardIn | None, Body()] = None, *,
                       user: Annotated[User, Depends(api_user)]) -> Any:
    body = body or ForwardIn()
    view, error = await act(request, lambda s, now: board.forward(s, post_id, _fresh(s, user.id), body.to_department,
                                                                  body.note, now))
    return error_response(error, request_locale(request)) if error else view


@router.post("/posts/{post_id}/answer", response_model=PostOut, summary="Answer the post (or its follow-up)")
async def answer_post(request: Request, post_id: RowId, body: Annotated[AnswerIn | None, Body()] = None, *,
                      user: Annotated[User, Depends(api_user)]) -> Any:
    body = body or AnswerIn()
    view, error = await act(request, lambda s, now: board.answer(s, post_id, _fresh(s, user.id), body.text, now))
    return error_response(error, request_locale(request)) if error else view


__all__ = ["act", "deadlines_of", "error_response", "router"]
