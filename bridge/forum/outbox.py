"""The forum outbox worker: each outbox row is sent until the forum has it, and applied exactly once.

Filing a case (``bridge.cases.service.file_case``) only writes a ``forum_outbox``
row in the case's transaction; this worker sends it.  For each due row
(``state = pending`` and ``next_attempt_at <= now``), oldest first:

1. **Look up before retrying.**  If an earlier attempt was made (``attempts > 0``),
   the forum may have stored the post and then timed out: ask it first
   (``find_post(case number)``) and take the post it has.  Only when it has none
   is the post written again, with the case number as the idempotency key (the
   backends return an existing post for it too: belt and braces).
2. **Success**: in one transaction the row becomes ``sent`` (``sent_at``,
   ``remote_id``) and the case ``posted`` (:func:`bridge.forum.service.mark_posted`:
   ``forum_url``, acceptance deadline, timeline entry ``posted``).
3. **Failure** (:class:`ForumError`, a timeout, any exception): ``attempts`` + 1,
   ``last_error``, ``next_attempt_at`` = now + ``forum.retry_backoff_s[attempts-1]``
   (the last step repeats: a case filed while the forum is down is posted when it is
   back), and a timeline entry ``forum_post_failed`` on the case with the error.
   :class:`ForumRejected` (the forum refused for good) makes the row ``failed``: a
   person must look.  Every failure is published live (topic ``case``, kind
   ``forum_post_failed``) for supervisors.

Before sending, the payload is checked once more against the case's private
part (phone numbers, full name): a post that would carry one is refused (row
``failed``), never sent.

Operations (:class:`bridge.db.models.OutboxOperation`): ``create_post`` (payload from
``forum_payload``) and ``post_follow_up``
(payload ``{"text": ...}``, idempotency key ``<case number>:<suffix>``).
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.db.engine import Database
from bridge.cases.privacy import fold
from bridge.db.models import Case, ForumOutbox, OutboxOperation, OutboxState
from bridge.forum import service
from bridge.forum.adapter import Forum, ForumRejected, NewPost, PostRef
from bridge.live import LiveEvent, LiveEvents

log = structlog.get_logger(__name__)

DEFAULT_BACKOFF_S = (30, 120, 600, 1800, 3600)


def backoff_delay(attempts: int, backoff_s: Sequence[int]) -> timedelta:
    """The wait after the ``attempts``-th failure (1-based); the last step repeats."""
    steps = list(backoff_s) or list(DEFAULT_BACKOFF_S)
    return timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])


class PrivateDataInPost(ForumRejected):
    """The payload carries a private part of the case; it is never sent."""


def check_public(case: Case, text: str) -> None:
    """Refuse ``text`` if it holds the caller's phone numbers or full name (beyond the surname)."""
    digits = re.sub(r"[\s\-()（）+]", "", fold(text))  # the privacy guard's folding of full-width forms
    for phone in (case.caller_phone, case.caller_phone_alt):
        national = "".join(ch for ch in (phone or "") if ch.isdigit())
        if national.startswith("86") and len(national) > 11:
            national = national[2:]
        if len(national) >= 7 and national in digits:
            raise PrivateDataInPost("the post would carry the caller's phone number; not sent")
    full = (case.caller_full_name or "").strip()
    if full and len(full) > len(case.caller_surname or "") and full in text:
        raise PrivateDataInPost("the post would carry the caller's full name; not sent")


@dataclass
class _Due:
    id: int
    case_id: int
    case_number: str
    operation: str
    key: str
    payload: dict
    attempts: int
    forum_post_id: str | None
    forum_url: str | None


@dataclass
class OutboxStats:
    sent: int = 0
    failed: int = 0
    changes: list[service.CaseChange] = field(default_factory=list)


class OutboxWorker:
    """Sends due outbox rows through ``forum``; ``run_once`` is one pass (the link calls it in a loop)."""

    def __init__(self, db: Database, forum: Forum, *, backoff_s: Sequence[int] = DEFAULT_BACKOFF_S,
                 deadlines: service.DeadlinePolicy, live: LiveEvents | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 timeout_s: float = 30.0, batch: int = 50,
                 on_failure: Callable[[Exception], None] | None = None) -> None:
        """``on_failure``: told every failed send's exception (the link pauses on a rate limit)."""
        self.db = db
        self.forum = forum
        self.backoff_s = tuple(backoff_s)
        self.deadlines = deadlines
        self.live = live
        self.clock = clock
        self.timeout_s = timeout_s
        self.batch = batch
        self.on_failure = on_failure
        self.last_error: str | None = None

    # ------------------------------------------------------------- database side

    def _due(self, session: Session, now: datetime) -> list[_Due]:
        rows = session.execute(
            select(ForumOutbox, Case.number, Case.forum_post_id, Case.forum_url).join(Case, Case.id == ForumOutbox.case_id)
            .where(ForumOutbox.state == OutboxState.PENDING, ForumOutbox.next_attempt_at <= now)
            .order_by(ForumOutbox.next_attempt_at, ForumOutbox.id).limit(self.batch)).all()
        return [_Due(id=r.id, case_id=r.case_id, case_number=number, operation=r.operation, key=r.idempotency_key,
                     payload=dict(r.payload), attempts=r.attempts, forum_post_id=post_id, forum_url=url)
                for r, number, post_id, url in rows]

    def _succeeded(self, session: Session, due: _Due, remote_id: str, ref: PostRef | None,
                   now: datetime) -> service.CaseChange | None:
        row = session.get(ForumOutbox, due.id, with_for_update=True)
        if row is None or row.state is not OutboxState.PENDING:
            return None
        row.state = OutboxState.SENT
        row.sent_at = now
        row.remote_id = remote_id
        row.attempts = row.attempts + 1
        row.last_error = None
        if due.operation == OutboxOperation.CREATE_POST and ref is not None:
            return service.mark_posted(session, due.case_number, ref, now, self.deadlines, attempts=row.attempts)
        return None

    def _failed(self, session: Session, due: _Due, error: str, final: bool, now: datetime) -> dict:
        row = session.get(ForumOutbox, due.id, with_for_update=True)
        assert row is not None
        row.attempts = row.attempts + 1
        row.last_error = error[:2000]
        next_at = None
        if final:
            row.state = OutboxState.FAILED
        else:
            next_at = now + backoff_delay(row.attempts, self.backoff_s)
            row.next_attempt_at = next_at
        service.record_post_failure(session, due.case_id, error=error, attempt=row.attempts, now=now,
                                    next_attempt_at=next_at, gave_up=final, operation=due.operation)
        return {"number": due.case_number, "operation": due.operation, "attempts": row.attempts,
                "error": error[:500], "gave_up": final,
                "next_attempt_at": next_at.isoformat() if next_at else None}

    # ---------------------------------------------------------------- forum side

    async def _send(self, due: _Due) -> tuple[str, PostRef | None]:
        if due.operation == OutboxOperation.CREATE_POST:
            ref = await self.forum.find_post(due.case_number) if due.attempts > 0 else None
            if ref is not None:
                log.info("forum.outbox.found_existing", case_number=due.case_number, remote_id=ref.remote_id)
            else:
                post = NewPost(case_number=due.key, unit_code=due.payload["department"],
                               title=due.payload["title"], body=due.payload["body"])
                ref = await self.forum.create_post(post)
            return ref.remote_id, ref
        if due.operation == OutboxOperation.POST_FOLLOW_UP:
            ref = await self.forum.find_post(due.case_number)
            if ref is None:
                raise ForumRejected("the case has no post on the forum yet")
            reply_id = await self.forum.post_follow_up(ref, due.payload["text"], idempotency_key=due.key)
            return reply_id, None
        raise ForumRejected(f"unknown outbox operation {due.operation!r}")

    def _check(self, session: Session, due: _Due) -> None:
        case = session.get(Case, due.case_id)
        assert case is not None
        text = " ".join(str(v) for v in due.payload.values())
        check_public(case, text)

    async def send_one(self, due: _Due) -> tuple[bool, service.CaseChange | dict | None]:
        try:
            await self.db.run_in_session(self._check, due, readonly=True)
            remote_id, ref = await asyncio.wait_for(self._send(due), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried (or given up)
            if self.on_failure is not None:
                self.on_failure(exc)
            final = isinstance(exc, ForumRejected)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.last_error = error
            log.warning("forum.outbox.failed", case_number=due.case_number, operation=due.operation,
                        attempt=due.attempts + 1, error=error, gave_up=final)
            info = await self.db.run_in_session(self._failed, due, error, final, self.clock())
            if self.live is not None:
                self.live.publish(LiveEvent("case", "forum_post_failed", info))
            return False, info
        change = await self.db.run_in_session(self._succeeded, due, remote_id, ref, self.clock())
        self.last_error = None
        log.info("forum.outbox.sent", case_number=due.case_number, operation=due.operation, remote_id=remote_id)
        if change is not None and self.live is not None:
            self.live.publish(LiveEvent("case", "state_changed", change.live_data()))
        return True, change

    async def run_once(self, *, stop: Callable[[], bool] = lambda: False) -> OutboxStats:
        """Send every due row once, until ``stop()`` says so (the forum rate-limits us: the
        rows after keep their turn instead of each failing the same way); returns what happened."""
        stats = OutboxStats()
        due_rows = await self.db.run_in_session(self._due, self.clock(), readonly=True)
        for due in due_rows:
            if stop():
                break
            ok, change = await self.send_one(due)
            if ok:
                stats.sent += 1
                if isinstance(change, service.CaseChange):
                    stats.changes.append(change)
            else:
                stats.failed += 1
        return stats


def outbox_counts(session: Session) -> dict[str, int]:
    """Rows per state, for health and supervisors."""
    rows = session.execute(select(ForumOutbox.state, func.count()).group_by(ForumOutbox.state)).all()
    counts = {s.value: 0 for s in OutboxState}
    counts.update({state.value: n for state, n in rows})
    return counts


__all__ = ["OutboxStats", "OutboxWorker", "backoff_delay", "check_public",
           "outbox_counts"]
