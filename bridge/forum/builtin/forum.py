"""The builtin backend as a :class:`bridge.forum.adapter.Forum`: in-process, on the daemon's database.

Every method runs the board's synchronous code (:mod:`.board`) in a worker
thread, in its own transaction.  Idempotency is the board's: one thread per case
number, one follow-up per idempotency key.  The event cursor is the last
``board_events.id`` seen.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from bridge.db.engine import Database
from bridge.db.models import Department
from bridge.forum.adapter import Board, EventPage, ForumRejected, NewPost, PostRef
from bridge.forum.builtin import board


class BuiltinForum:
    """The builtin board behind the Forum interface (``bridge.forum.adapter.Forum``)."""

    name = "builtin"

    def __init__(self, db: Database, public_url: str, *, page_size: int = 500) -> None:
        self.db = db
        self.public_url = public_url.rstrip("/")
        self.page_size = page_size

    def _ref(self, post) -> PostRef:
        return PostRef(case_number=post.case_number, remote_id=str(post.id),
                       url=board.post_url(self.public_url, post.id))

    async def list_boards(self) -> list[Board]:
        def work(session) -> list[Board]:
            units = session.scalars(select(Department).where(Department.retired_at.is_(None))
                                    .order_by(Department.code))
            return [Board(unit_code=d.code, name=d.name, remote_id=d.code) for d in units]

        return await self.db.run_in_session(work, readonly=True)

    async def create_post(self, post: NewPost) -> PostRef:
        def work(session) -> PostRef:
            try:
                row, _created = board.create_post(session, post, datetime.now(timezone.utc))
            except board.BoardError as exc:
                raise ForumRejected(str(exc)) from None
            return self._ref(row)

        return await self.db.run_in_session(work)

    async def find_post(self, case_number: str) -> PostRef | None:
        def work(session) -> PostRef | None:
            row = board.find_post(session, case_number)
            return None if row is None else self._ref(row)

        return await self.db.run_in_session(work, readonly=True)

    async def post_follow_up(self, ref: PostRef, text: str, *, idempotency_key: str) -> str:
        def work(session) -> str:
            try:
                reply, _event = board.follow_up(session, ref.case_number, text, idempotency_key,
                                                datetime.now(timezone.utc))
            except board.BoardError as exc:
                raise ForumRejected(str(exc)) from None
            return str(reply.id)

        return await self.db.run_in_session(work)

    async def fetch_events(self, cursor: str | None) -> EventPage:
        def work(session) -> EventPage:
            events, new_cursor = board.events_since(session, cursor, self.page_size)
            return EventPage(events=[board.thread_event(e) for e in events], cursor=new_cursor)

        return await self.db.run_in_session(work, readonly=True)
