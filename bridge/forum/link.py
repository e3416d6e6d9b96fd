"""The forum link (a daemon ``Link``): runs the outbox worker, polls thread events, flags overdue cases.

    link = ForumLink(config, db, health, live)           # builtin backend by default
    link = ForumLink(config, db, health, live, forum=DiscourseForum(...))
    await link.start(); ...; await link.stop()

One asyncio task repeats a *cycle*: send the due outbox rows
(:class:`bridge.forum.outbox.OutboxWorker`), fetch thread events since the
stored cursor (``forum_cursors`` row per backend) and apply them to the cases
(:func:`bridge.forum.service.apply_events`, once per event id), and every
``overdue_every_s`` flag cases past their deadline.  Between cycles it waits
``interval_s`` (1 s for the builtin board, ``forum.discourse.poll_interval_s``
otherwise) or less: a live event ``case``/``filed`` (a new case to post) or
``board``/* wakes it at once, and so does :meth:`wake`.  Webhooks hand their
events to :meth:`apply_events`.

Health ``forum``: "connecting" until the first cycle, then "up" with the outbox
counts (``outbox_pending``, ``outbox_failed``), the last error and, when the China
calendar does not cover the coming weeks, a ``calendar`` detail (also logged as
an error); "down: <reason>" while the forum cannot be reached.
Every state change and overdue flag is published live on topic ``case``.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timezone

import structlog
from sqlalchemy.orm import Session

from bridge.config import Config
from bridge.db.engine import Database
from bridge.db.models import ForumCursor
from bridge.forum import service
from bridge.forum.adapter import Forum, ForumError, ForumRejected, ThreadEvent
from bridge.forum.outbox import OutboxWorker, outbox_counts
from bridge.health import CONNECTING, UP, Health, down
from bridge.live import LiveEvent, LiveEvents

log = structlog.get_logger(__name__)

BUILTIN_INTERVAL_S = 1.0
OVERDUE_EVERY_S = 30.0


def _load_cursor(session: Session, backend: str) -> str | None:
    row = session.get(ForumCursor, backend)
    return row.cursor if row else None


def _store_cursor(session: Session, backend: str, cursor: str | None, now: datetime) -> None:
    row = session.get(ForumCursor, backend)
    if row is None:
        session.add(ForumCursor(backend=backend, cursor=cursor, updated_at=now))
    else:
        row.cursor = cursor
        row.updated_at = now


class ForumLink:
    def __init__(self, config: Config, db: Database, health: Health, live: LiveEvents, *,
                 forum: Forum | None = None, interval_s: float | None = None,
                 overdue_every_s: float = OVERDUE_EVERY_S, deadlines: service.DeadlinePolicy | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.config = config
        self.db = db
        self.health = health
        self.live = live
        self.backend = config.forum.backend
        if forum is None:
            if self.backend != "builtin":
                raise ValueError("forum.backend is not builtin: pass the backend's Forum to ForumLink")
            from bridge.forum.builtin.forum import BuiltinForum

            forum = BuiltinForum(db, config.web.public_url)
        self.forum = forum
        self.deadlines = deadlines or service.Deadlines.from_config(config)
        self.clock = clock
        self.interval_s = interval_s if interval_s is not None else (
            BUILTIN_INTERVAL_S if self.backend == "builtin" else config.forum.discourse.poll_interval_s)
        self.overdue_every_s = overdue_every_s
        self.outbox = OutboxWorker(db, forum, backoff_s=config.forum.retry_backoff_s, deadlines=self.deadlines,
                                   live=live, clock=clock)
        self.cursor: str | None = None
        self._cursor_loaded = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self._last_overdue: float | None = None
        self._calendar_problem: str | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.health.set("forum", CONNECTING, backend=self.backend)
        self._task = asyncio.create_task(self._run(), name="forum-link")
        self._listener = asyncio.create_task(self._listen(), name="forum-link-listen")

    async def stop(self) -> None:
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listener = None
        self.health.set("forum", down("stopped"), backend=self.backend)

    def wake(self) -> None:
        """Run a cycle now (a case was filed, a thread changed)."""
        self._wake.set()

    async def _listen(self) -> None:
        async with self.live.subscribe() as queue:
            while True:
                event = await queue.get()
                if (event.topic == "case" and event.kind == "filed") or event.topic == "board":
                    self.wake()

    async def _run(self) -> None:
        while True:
            try:
                await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the link keeps running; health says why
                log.exception("forum.cycle_failed")
                self.health.set("forum", down(f"{type(exc).__name__}: {exc}"[:200]), backend=self.backend)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()

    # --------------------------------------------------------------------- cycle

    async def cycle(self) -> dict:
        """One pass: outbox, events, overdue flags, health. Returns counts (for tests and benchmarks)."""
        stats = await self.outbox.run_once()
        problem: str | None = None
        applied = 0
        try:
            applied = await self.poll_events()
        except ForumError as exc:
            problem = f"events: {exc}"
            log.warning("forum.poll_failed", error=str(exc))
        await self._overdue()
        if problem is None and stats.failed and not stats.sent and self.outbox.last_error and \
                not self.outbox.last_error.startswith(ForumRejected.__name__):
            problem = f"posting: {self.outbox.last_error}"
        await self._health(problem)
        return {"sent": stats.sent, "failed": stats.failed, "applied": applied}

    async def poll_events(self) -> int:
        """Fetch and apply every event since the cursor; returns how many changed a case."""
        if not self._cursor_loaded:
            self.cursor = await self.db.run_in_session(_load_cursor, self.backend, readonly=True)
            self._cursor_loaded = True
        applied = 0
        while True:
            page = await self.forum.fetch_events(self.cursor)
            if page.events:
                applied += await self.apply_events(page.events)
            if page.cursor != self.cursor:
                self.cursor = page.cursor
                await self.db.run_in_session(_store_cursor, self.backend, self.cursor, self.clock())
            if not page.events:
                return applied

    async def apply_events(self, events: list[ThreadEvent]) -> int:
        """Apply thread events (from polling or a webhook); each is applied once. Publishes the changes."""
        changes = await self.db.run_in_session(service.apply_events, events, self.deadlines)
        for change in changes:
            self.live.publish(LiveEvent("case", "state_changed", change.live_data()))
        return len(changes)

    async def _overdue(self) -> None:
        loop = asyncio.get_running_loop()
        if self._last_overdue is not None and loop.time() - self._last_overdue < self.overdue_every_s:
            return
        self._last_overdue = loop.time()
        now = self.clock()
        for flag in await self.db.run_in_session(service.flag_overdue, now):
            log.warning("forum.case_overdue", case_number=flag["number"], unit=flag["unit"], step=flag["step"])
            self.live.publish(LiveEvent("case", "overdue", flag))
        calendar = getattr(self.deadlines, "calendar", None)
        problem = None
        if calendar is not None and hasattr(calendar, "coverage_problem"):
            problem = calendar.coverage_problem(now.astimezone(self.config.site.zone).date())
        problem = problem or getattr(self.deadlines, "problem", None)
        if problem and problem != self._calendar_problem:
            log.error("forum.calendar_not_covered", problem=problem)
        self._calendar_problem = problem

    async def _health(self, problem: str | None) -> None:
        counts = await self.db.run_in_session(outbox_counts, readonly=True)
        detail = {"backend": self.backend, "outbox_pending": counts["pending"], "outbox_failed": counts["failed"],
                  "last_error": self.outbox.last_error}
        if self._calendar_problem:
            detail["calendar"] = self._calendar_problem
        self.health.set("forum", down(problem[:200]) if problem else UP, **detail)


__all__ = ["ForumLink"]
