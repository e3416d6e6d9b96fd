"""The forum link (a daemon ``Link``): runs the outbox worker, polls thread events, flags overdue cases.

    link = ForumLink(config, db, health, live)           # builtin backend by default
    link = ForumLink(config, db, health, live, forum=DiscourseForum(...))
    await link.start(); ...; await link.stop()

One asyncio task repeats a *cycle*: send the due outbox rows
(:class:`bridge.forum.outbox.OutboxWorker`), fetch thread events since the
stored cursor (``forum_cursors`` row per backend) and apply them to the cases
(:func:`bridge.forum.service.apply_events`, once per event id), and every
``overdue_every_s`` flag cases past their deadline.  Between cycles it waits
``interval_s`` (10 s for the builtin board, ``forum.discourse.poll_interval_s``
otherwise) or less: a live event ``case``/``filed`` (a new case to post) or
``board``/* wakes it at once, and so does :meth:`wake`.  Webhooks hand their
events to :meth:`apply_events`.

**Verification** (a backend with ``verify_threads``, i.e. Discourse): each cycle
also reads the threads of at most ``forum.discourse.verify_per_cycle`` open posted
cases and applies what their present state shows (what polling can miss: a tag
acceptance on a topic that is not among the recently active ones, the history
before a fresh start).  The deadline-critical go first: the owed step (acceptance
or answer) overdue or due soonest, then the least recently verified; one slot goes
to all open cases in turn (by id), so every one is read in time; none is verified
again within ``forum.discourse.verify_min_interval_s`` (kept in memory).
At its first cycle the link also hands the backend the known case -> topic pairs
(``remember_topics``), so telling a case's topic from an impostor costs no request.

**Rate limits**: when the forum answers :class:`bridge.forum.adapter.ForumRateLimited` (polling,
verification or the outbox), the link sends nothing to it until ``retry_after``
has passed: no outbox row, no poll, no verification (overdue flags go on).

Health ``forum``: "connecting" until the first cycle, then "up" with the outbox
counts (``outbox_pending``, ``outbox_failed``), the last error and, when the China
calendar does not cover the coming weeks, a ``calendar`` detail (also logged as
an error); "down: <reason>" while the forum cannot be reached; "down: rate limited
by the forum until <time>" (detail ``rate_limited_until``) while it asks us to wait.
Every state change and overdue flag is published live on topic ``case``.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.config import Config
from bridge.db.engine import Database
from bridge.db.models import Case, CaseState, ForumCursor
from bridge.forum import service
from bridge.forum.adapter import Forum, ForumError, ForumRateLimited, ForumRejected, PostRef, ThreadEvent
from bridge.forum.outbox import OutboxStats, OutboxWorker, outbox_counts
from bridge.health import CONNECTING, UP, Health, down
from bridge.live import LiveEvent, LiveEvents

log = structlog.get_logger(__name__)

# The builtin board's actions apply their events at once and wake the link (live "board"
# events), so its polling is only a safety net; every second it cost the daemon idle CPU.
BUILTIN_INTERVAL_S = 10.0
OVERDUE_EVERY_S = 30.0
# Open cases with a post, owing a step (acceptance or answer): what verification reads.
VERIFY_STATES = (CaseState.POSTED, CaseState.FORWARDED, CaseState.ACCEPTED, CaseState.REOPENED)


@runtime_checkable
class VerifyingForum(Protocol):
    """What a backend may add to :class:`Forum` (Discourse does; the builtin board needs neither)."""

    async def verify_threads(self, refs: list[PostRef]) -> list[ThreadEvent]: ...

    def remember_topics(self, topics: Mapping[str, str]) -> None: ...


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


def _known_topics(session: Session) -> dict[str, str]:
    """Case number -> the forum's id for its post, for every case posted."""
    rows = session.execute(select(Case.number, Case.forum_post_id).where(Case.forum_post_id.is_not(None)))
    return {number: post_id for number, post_id in rows}


@dataclass(frozen=True)
class VerifyCandidate:
    id: int
    number: str
    remote_id: str
    url: str
    deadline_at: datetime | None

    def ref(self) -> PostRef:
        return PostRef(case_number=self.number, remote_id=self.remote_id, url=self.url)


def _candidates(session: Session, limit: int, *, after_id: int | None = None) -> list[VerifyCandidate]:
    """Open posted cases: the ``limit`` whose deadline comes first (overdue first, unknown last),
    or with ``after_id`` the next ``limit`` by id (wrapping round to the first)."""
    query = (select(Case.id, Case.number, Case.forum_post_id, Case.forum_url, Case.deadline_at)
             .where(Case.state.in_(VERIFY_STATES), Case.forum_post_id.is_not(None)))
    if after_id is None:
        rows = session.execute(query.order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id)
                               .limit(limit)).all()
    else:
        rows = session.execute(query.where(Case.id > after_id).order_by(Case.id).limit(limit)).all()
        if len(rows) < limit:
            rows += session.execute(query.where(Case.id <= after_id).order_by(Case.id)
                                    .limit(limit - len(rows))).all()
    return [VerifyCandidate(id_, number, post_id, url or "", due) for id_, number, post_id, url, due in rows]


def _verify_candidates(session: Session, limit: int, after_id: int) -> tuple[list, list]:
    return _candidates(session, limit), _candidates(session, limit, after_id=after_id)


def choose_for_verification(critical: list[VerifyCandidate], in_turn: list[VerifyCandidate],
                            last_verified: Mapping[str, datetime], now: datetime, *, count: int,
                            min_interval: timedelta) -> list[VerifyCandidate]:
    """At most ``count`` cases, none verified within ``min_interval``.

    ``critical`` (by deadline) fill all slots but one: the earliest deadline first (overdue ones
    have the earliest), then the least recently verified (never first).  The last slot goes to
    the first of ``in_turn`` (all open cases in turn, by id), so that every open case is read
    in time, even while more overdue cases than slots keep coming round.
    """
    def fresh(c: VerifyCandidate) -> bool:
        seen = last_verified.get(c.number)
        return seen is None or now - seen >= min_interval

    def key(c: VerifyCandidate) -> tuple:
        seen = last_verified.get(c.number)
        return (c.deadline_at is None, c.deadline_at.timestamp() if c.deadline_at else 0.0,
                seen.timestamp() if seen else float("-inf"))

    first = sorted(filter(fresh, critical), key=key)
    turn = list(filter(fresh, in_turn))
    if count < 2 or not turn:
        return first[:count]
    chosen = first[:count - 1]
    for candidate in turn + first[count - 1:]:
        if len(chosen) < count and candidate.number not in {c.number for c in chosen}:
            chosen.append(candidate)
    return chosen


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
        self.outbox = OutboxWorker(db, forum, backoff_s=config.forum.retry_backoff_s,
                                   deadlines=self.deadlines, live=live, clock=clock, on_failure=self.note_rate_limit)
        discourse = config.forum.discourse
        self.verify_per_cycle = discourse.verify_per_cycle if isinstance(forum, VerifyingForum) else 0
        self.verify_min_interval = timedelta(seconds=discourse.verify_min_interval_s)
        self.last_verified: dict[str, datetime] = {}  # case number -> when its thread was last read
        self._turn_after = 0  # the open cases' turn: the id of the last one read in turn
        self.rate_limited_until: datetime | None = None
        self.cursor: str | None = None
        self._cursor_loaded = False
        self._topics_loaded = False
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
        """One pass: outbox, events, verification, overdue flags, health. Returns counts (for tests and
        benchmarks). While the forum rate-limits us, only the overdue flags and health."""
        await self._remember_topics()
        stats, applied, verified, problem = OutboxStats(), 0, 0, None
        if not self.is_rate_limited():
            stats = await self.outbox.run_once(stop=self.is_rate_limited)
        if not self.is_rate_limited():  # the outbox may have met the limit
            try:
                applied = await self.poll_events()
                verified, changed = await self.verify_threads()
                applied += changed
            except ForumError as exc:
                self.note_rate_limit(exc)
                problem = f"events: {exc}"
                log.warning("forum.poll_failed", error=str(exc))
        await self._overdue()
        if problem is None and stats.failed and not stats.sent and self.outbox.last_error and \
                not self.outbox.last_error.startswith(ForumRejected.__name__):
            problem = f"posting: {self.outbox.last_error}"
        await self._health(problem)
        return {"sent": stats.sent, "failed": stats.failed, "applied": applied, "verified": verified}

    # -------------------------------------------------------------- rate limits

    def is_rate_limited(self) -> bool:
        return self.rate_limited_until is not None and self.clock() < self.rate_limited_until

    def note_rate_limit(self, exc: Exception) -> None:
        """After a :class:`ForumRateLimited`, nothing goes to the forum until its ``retry_after`` has passed."""
        if not isinstance(exc, ForumRateLimited):
            return
        retry_after = exc.retry_after
        until = self.clock() + timedelta(seconds=float(retry_after))
        if self.rate_limited_until is None or until > self.rate_limited_until:
            self.rate_limited_until = until
        log.warning("forum.rate_limited", retry_after_s=retry_after, until=self.rate_limited_until.isoformat())

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

    async def verify_threads(self) -> tuple[int, int]:
        """Read the threads of the most deadline-critical open cases (see the module doc);
        returns (threads read, case changes)."""
        if self.verify_per_cycle <= 0:
            return 0, 0
        now = self.clock()
        self._forget_old_verifications(now)
        recent = sum(1 for at in self.last_verified.values() if now - at < self.verify_min_interval)
        critical, in_turn = await self.db.run_in_session(
            _verify_candidates, self.verify_per_cycle + recent, self._turn_after, readonly=True)
        chosen = choose_for_verification(critical, in_turn, self.last_verified, now, count=self.verify_per_cycle,
                                         min_interval=self.verify_min_interval)
        if not chosen:
            return 0, 0
        turns = {c.number for c in in_turn} & {c.number for c in chosen}
        self._turn_after = next((c.id for c in reversed(in_turn) if c.number in turns), self._turn_after)
        for candidate in chosen:
            self.last_verified[candidate.number] = now  # tried: a failing thread does not hold the slot
        events = await self.forum.verify_threads([c.ref() for c in chosen])
        log.info("forum.threads_verified", case_numbers=[c.number for c in chosen], events=len(events))
        return len(chosen), (await self.apply_events(events) if events else 0)

    def _forget_old_verifications(self, now: datetime) -> None:
        """Keep the memory bounded: an entry older than 10 minimum intervals counts as never verified."""
        horizon = self.verify_min_interval * 10
        for number in [n for n, at in self.last_verified.items() if now - at >= horizon]:
            del self.last_verified[number]

    async def _remember_topics(self) -> None:
        """Once: the case -> topic pairs the database knows, for a backend that uses them."""
        if self._topics_loaded or not isinstance(self.forum, VerifyingForum):
            return
        topics = await self.db.run_in_session(_known_topics, readonly=True)
        self.forum.remember_topics(topics)
        self._topics_loaded = True
        log.info("forum.topics_remembered", count=len(topics))

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
        if self.is_rate_limited():
            assert self.rate_limited_until is not None
            until = self.rate_limited_until.astimezone(self.config.site.zone).isoformat(timespec="seconds")
            detail["rate_limited_until"] = until
            problem = f"rate limited by the forum until {until}"
        self.health.set("forum", down(problem[:200]) if problem else UP, **detail)


__all__ = ["ForumLink"]
