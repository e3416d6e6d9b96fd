"""Domain events between capabilities: durable, in order, each delivered once per consumer.

Unlike the live feed for browsers (``bridge.live``, which drops what a slow page
cannot take), nothing here is ever dropped.  The source is the case timeline: a
topic is a set of ``case_events`` kinds (``case_answered``: the unit answered, or
answered a follow-up; ``answer_heard``: the caller heard that answer from the PBX), and ``case_events`` rows are never updated or deleted.

Each :class:`Consumer` has a cursor row ``events:<name>`` in the ``cursors`` table
(the id of the last case event it handled).  :class:`DomainEvents`, one per daemon,
hands a consumer the events past its cursor, one at a time, and moves the cursor
**in the same transaction** as the consumer's own work; so an event is handled
exactly once, also across a crash or a restart (a rolled-back handling is tried
again, a committed one never).  A consumer should therefore do database work in the
session it is given and nothing outside it.  A consumer that can also handle a list of
events at once (``handle_batch``) gets up to ``BATCH`` of them in one transaction, the cursor
moved past the last; a batch that fails is handed over again one event at a time, so only the
failing event stays pending.

Writers call :func:`announce_case_event` before they add a case event (the forum
service's ``apply_event`` does).  It wakes the publishers of that database after the
commit, and on PostgreSQL it takes a transaction lock per topic first, so the rows of
a topic commit in the order of their ids and a cursor never passes a row that is
still to commit.  A publisher also catches up at start and looks every ``POLL_S``
seconds (rows written by another process, a wake-up lost in a crash).

A consumer that fails on the same event ``PARK_AFTER`` times in a row (not counting the database
being unreachable) has that event **parked**: its cursor moves past it and a
``parked_domain_events`` row keeps it, in one transaction, so one broken event cannot hold up
every later one (a broken answer must not stop the callbacks of every later answer).  /healthz
warns while a parked event is unresolved; ``hotline-bridge events parked`` lists them and
``hotline-bridge events retry ID`` asks the daemon to hand one over again (its next look, at most
``POLL_S`` later), once the cause is fixed.

A brand-new consumer starts at the beginning of the timeline.
"""
from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from bridge.db.engine import Database
from bridge.db.models import Case, CaseEvent, Cursor, ParkedDomainEvent

log = structlog.get_logger(__name__)

POLL_S = 30.0
BATCH = 100
RETRY_S = 5.0
# Failures in a row on one event before it is parked (tries RETRY_S or more apart).
PARK_AFTER = 5
PARKED_WARNING = "domain_events.parked"


@dataclass(frozen=True)
class Topic:
    name: str
    case_event_kinds: tuple[str, ...]

    @property
    def lock_key(self) -> int:
        """A PostgreSQL advisory-lock key of this topic (stable across processes)."""
        return 0x68620000_00000000 | zlib.crc32(self.name.encode())


# The responsible unit answered the case (first answer, or the answer to a follow-up).
CASE_ANSWERED = Topic("case_answered", ("answered", "follow_up_answered"))
# The caller heard the unit's answer played by the PBX, without a person (the status line, an
# automated voice callback): detail {"answer": the answer's case event id, "via", "attempt"?}.
ANSWER_HEARD_KIND = "answer_heard"
ANSWER_HEARD = Topic("answer_heard", (ANSWER_HEARD_KIND,))
TOPICS: tuple[Topic, ...] = (CASE_ANSWERED, ANSWER_HEARD)


@dataclass(frozen=True)
class DomainEvent:
    position: int  # the case event's id: the order of the stream
    topic: str
    kind: str  # the case event's kind
    case_id: int
    case_number: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Consumer:
    """``handle(session, event)`` runs in the transaction that moves the cursor ``events:<name>``;
    ``handle_batch(session, events)``, when given, does the same for a list of events in order
    (far fewer statements than one transaction per event: 1,000 answers at once)."""

    name: str
    topic: Topic
    handle: Callable[[Session, DomainEvent], None]
    handle_batch: Callable[[Session, list[DomainEvent]], None] | None = None

    @property
    def cursor_name(self) -> str:
        return f"events:{self.name}"


# ------------------------------------------------------------ the writers' side

_WAKE = "bridge.domain_events.wake"
_OUTCOME = "bridge.domain_events.outcome"
_publishers: dict[str, set[DomainEvents]] = {}
_publishers_lock = threading.Lock()


def _database_key(bind: Any) -> str:
    return bind.url.render_as_string(hide_password=True)


def announce_case_event(session: Session, kind: str) -> None:
    """Call before adding a case event of ``kind``: if a topic carries that kind, order its rows
    (PostgreSQL) and wake this database's publishers after the commit."""
    topics = [topic for topic in TOPICS if kind in topic.case_event_kinds]
    if not topics:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        for topic in topics:  # held until the transaction ends: rows of a topic commit in id order
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": topic.lock_key})
    session.info[_WAKE] = _database_key(bind)


# A savepoint's release fires after_commit too, and its rollback after_rollback: the outcome
# that counts is the last one seen when the outermost transaction ends.
@event.listens_for(Session, "after_commit")
def _note_commit(session: Session) -> None:
    if _WAKE in session.info:
        session.info[_OUTCOME] = "commit"


@event.listens_for(Session, "after_rollback")
def _note_rollback(session: Session) -> None:
    if _WAKE in session.info:
        session.info[_OUTCOME] = "rollback"


@event.listens_for(Session, "after_transaction_end")
def _wake_after_commit(session: Session, transaction: Any) -> None:
    if transaction.parent is not None or _WAKE not in session.info:
        return
    key = session.info.pop(_WAKE)
    if session.info.pop(_OUTCOME, None) != "commit":
        return
    with _publishers_lock:
        publishers = list(_publishers.get(key, ()))
    for publisher in publishers:
        publisher.wake()


# ------------------------------------------------------------- the reading side


def _position(session: Session, consumer: Consumer) -> int:
    row = session.get(Cursor, consumer.cursor_name)
    return int(row.position or 0) if row else 0


def pending_events(session: Session, consumer: Consumer, limit: int = BATCH) -> list[DomainEvent]:
    """The consumer's next events past its cursor, in order."""
    rows = session.execute(
        select(CaseEvent.id, CaseEvent.kind, CaseEvent.case_id, Case.number, CaseEvent.at, CaseEvent.detail)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.id > _position(session, consumer), CaseEvent.kind.in_(consumer.topic.case_event_kinds))
        .order_by(CaseEvent.id).limit(limit)).all()
    return [DomainEvent(position=id_, topic=consumer.topic.name, kind=kind, case_id=case_id, case_number=number,
                        at=at, detail=dict(detail or {})) for id_, kind, case_id, number, at, detail in rows]


def _locked_cursor(session: Session, consumer: Consumer) -> Cursor:
    cursor = session.get(Cursor, consumer.cursor_name, with_for_update=True, populate_existing=True)
    if cursor is None:
        cursor = Cursor(name=consumer.cursor_name, position="0")
        session.add(cursor)
        session.flush()  # a concurrent first delivery fails here (primary key) and is tried again
    return cursor


def deliver_one(session: Session, consumer: Consumer, domain_event: DomainEvent) -> bool:
    """Hand ``domain_event`` to the consumer and move its cursor, in this transaction; False
    when the cursor is already past it (another process delivered it)."""
    cursor = _locked_cursor(session, consumer)
    if int(cursor.position or 0) >= domain_event.position:
        return False
    consumer.handle(session, domain_event)
    cursor.position = str(domain_event.position)
    cursor.updated_at = datetime.now(timezone.utc)
    return True


def deliver_batch(session: Session, consumer: Consumer, events: list[DomainEvent]) -> list[DomainEvent]:
    """Hand the events still past the cursor to ``consumer.handle_batch`` and move the cursor
    past the last, in this transaction; the events delivered (none: another process did)."""
    if consumer.handle_batch is None:
        raise ValueError(f"the consumer {consumer.name!r} has no handle_batch; deliver its events with deliver_one")
    cursor = _locked_cursor(session, consumer)
    fresh = [e for e in events if e.position > int(cursor.position or 0)]
    if fresh:
        consumer.handle_batch(session, fresh)
        cursor.position = str(fresh[-1].position)
        cursor.updated_at = datetime.now(timezone.utc)
    return fresh


def _unreachable(exc: BaseException) -> bool:
    """The database itself failed (down, locked, connection lost): no fault of the event."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def park(session: Session, consumer: Consumer, domain_event: DomainEvent, failures: int, error: str) -> bool:
    """Move the consumer's cursor past ``domain_event`` and keep it as parked, in this
    transaction; False when the cursor is already past it (another process delivered it)."""
    cursor = _locked_cursor(session, consumer)
    if int(cursor.position or 0) >= domain_event.position:
        return False
    session.add(ParkedDomainEvent(consumer=consumer.name, position=domain_event.position,
                                  case_id=domain_event.case_id, failures=failures, error=error[:4000]))
    cursor.position = str(domain_event.position)
    cursor.updated_at = datetime.now(timezone.utc)
    return True


def event_at(session: Session, consumer: Consumer, position: int) -> DomainEvent | None:
    row = session.execute(
        select(CaseEvent.id, CaseEvent.kind, CaseEvent.case_id, Case.number, CaseEvent.at, CaseEvent.detail)
        .join(Case, Case.id == CaseEvent.case_id).where(CaseEvent.id == position)).first()
    if row is None:
        return None
    id_, kind, case_id, number, at, detail = row
    return DomainEvent(position=id_, topic=consumer.topic.name, kind=kind, case_id=case_id, case_number=number,
                       at=at, detail=dict(detail or {}))


def retries_requested(session: Session, consumer: Consumer) -> list[int]:
    """The ids of this consumer's parked events a person asked to try again."""
    return list(session.scalars(select(ParkedDomainEvent.id).where(
        ParkedDomainEvent.consumer == consumer.name, ParkedDomainEvent.resolved_at.is_(None),
        ParkedDomainEvent.retry_requested_at.is_not(None)).order_by(ParkedDomainEvent.position)))


def retry_parked(session: Session, consumer: Consumer, parked_id: int) -> bool:
    """Hand a parked event to the consumer again and mark it resolved, in this transaction;
    False when it is resolved already or no longer asked for."""
    parked = session.get(ParkedDomainEvent, parked_id, with_for_update=True, populate_existing=True)
    if parked is None or parked.resolved_at is not None or parked.retry_requested_at is None:
        return False
    domain_event = event_at(session, consumer, parked.position)
    if domain_event is not None:
        consumer.handle(session, domain_event)
    parked.resolved_at = datetime.now(timezone.utc)
    return True


def retry_failed(session: Session, parked_id: int, error: str) -> None:
    """The retry failed: count it, keep the error, wait for a person to ask again."""
    parked = session.get(ParkedDomainEvent, parked_id, with_for_update=True)
    if parked is not None and parked.resolved_at is None:
        parked.failures += 1
        parked.error = error[:4000]
        parked.retry_requested_at = None


def unresolved_parked(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ParkedDomainEvent)
                          .where(ParkedDomainEvent.resolved_at.is_(None))) or 0


def request_retry(session: Session, parked_id: int) -> ParkedDomainEvent:
    """Ask the daemon to hand a parked event over again (``hotline-bridge events retry``)."""
    parked = session.get(ParkedDomainEvent, parked_id, with_for_update=True)
    if parked is None:
        raise LookupError(f"no parked event with id {parked_id}; `hotline-bridge events parked` lists them")
    if parked.resolved_at is not None:
        raise LookupError(f"parked event {parked_id} was handled already (at {parked.resolved_at.isoformat()})")
    parked.retry_requested_at = datetime.now(timezone.utc)
    return parked


class DomainEvents:
    """The daemon's publisher: registers consumers, delivers what is past their cursors."""

    def __init__(self, db: Database, *, poll_s: float = POLL_S, park_after: int = PARK_AFTER,
                 health=None) -> None:
        self.db = db
        self.poll_s = poll_s
        self.park_after = park_after
        self.health = health  # bridge.health.Health: warned while a parked event is unresolved
        self._failures: dict[tuple[str, int], int] = {}  # (consumer, position): failures in a row
        self.consumers: list[Consumer] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def register(self, consumer: Consumer) -> None:
        if any(c.name == consumer.name for c in self.consumers):
            raise ValueError(f"a domain-event consumer named {consumer.name!r} is registered already")
        self.consumers.append(consumer)

    async def start(self) -> None:
        """Catch up (every event past every cursor), then follow wake-ups and the poll."""
        self._loop = asyncio.get_running_loop()
        with _publishers_lock:
            _publishers.setdefault(_database_key(self.db.engine), set()).add(self)
        await self.deliver_pending()
        self._task = asyncio.create_task(self._run(), name="domain-events")

    async def stop(self) -> None:
        with _publishers_lock:
            _publishers.get(_database_key(self.db.engine), set()).discard(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake(self) -> None:
        """From any thread: deliver now (a case event of a topic was committed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop closed meanwhile: the next start catches up
            pass

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if not await self.deliver_pending():
                await asyncio.sleep(RETRY_S)  # a consumer failed: do not spin on it

    async def deliver_pending(self) -> bool:
        """Deliver every pending event to every consumer; False if a consumer failed (it is
        tried again later from the same event)."""
        ok = True
        for consumer in self.consumers:
            await self._retry_requested(consumer)
            ok = await self._drain(consumer) and ok
        await self._warn_parked()
        return ok

    async def _retry_requested(self, consumer: Consumer) -> None:
        try:
            wanted = await self.db.run_in_session(retries_requested, consumer, readonly=True)
        except Exception as exc:  # noqa: BLE001 - the database is away: the drain says so too
            log.warning("domain_events.retries_unread", consumer=consumer.name, error=repr(exc))
            return
        for parked_id in wanted:
            try:
                if await self.db.run_in_session(retry_parked, consumer, parked_id):
                    log.info("domain_events.parked_resolved", consumer=consumer.name, parked_id=parked_id)
            except Exception as exc:  # noqa: BLE001 - kept parked, with the new error, for a person
                log.exception("domain_events.retry_failed", consumer=consumer.name, parked_id=parked_id)
                if not _unreachable(exc):
                    await self.db.run_in_session(retry_failed, parked_id, repr(exc))

    async def _warn_parked(self) -> None:
        if self.health is None:
            return
        try:
            count = await self.db.run_in_session(unresolved_parked, readonly=True)
        except Exception:  # noqa: BLE001 - the database's own component says it is down
            return
        self.health.warn(PARKED_WARNING, f"{count} domain event(s) parked after failing {self.park_after} times; "
                         "see `hotline-bridge events parked`" if count else None)

    async def _failed(self, consumer: Consumer, domain_event: DomainEvent, exc: Exception) -> bool:
        """Count a failure on ``domain_event``; park it once it failed ``park_after`` times in a
        row.  True when it was parked (the drain goes on past it)."""
        log.error("domain_events.consumer_failed", consumer=consumer.name, topic=consumer.topic.name,
                  case_number=domain_event.case_number, position=domain_event.position, error=repr(exc),
                  exc_info=exc)
        if _unreachable(exc):
            return False
        key = (consumer.name, domain_event.position)
        self._failures[key] = failures = self._failures.get(key, 0) + 1
        if failures < self.park_after:
            return False
        try:
            parked = await self.db.run_in_session(park, consumer, domain_event, failures, repr(exc))
        except Exception:  # noqa: BLE001 - tried again at the next failure
            log.exception("domain_events.park_failed", consumer=consumer.name, position=domain_event.position)
            return False
        del self._failures[key]
        if parked:
            log.error("domain_events.parked", consumer=consumer.name, topic=consumer.topic.name,
                      case_number=domain_event.case_number, position=domain_event.position, failures=failures)
        return True

    async def _drain(self, consumer: Consumer) -> bool:
        while True:
            batch = await self.db.run_in_session(pending_events, consumer, readonly=True)
            if not batch:
                return True
            if consumer.handle_batch is not None:
                try:
                    delivered = await self.db.run_in_session(deliver_batch, consumer, batch)
                except Exception as exc:  # noqa: BLE001 - one at a time below: only the failing one stays
                    log.warning("domain_events.batch_failed", consumer=consumer.name, topic=consumer.topic.name,
                                first=batch[0].position, last=batch[-1].position, error=repr(exc))
                else:
                    for domain_event in delivered:
                        self._log_delivered(consumer, domain_event)
                    continue
            for domain_event in batch:
                try:
                    delivered = await self.db.run_in_session(deliver_one, consumer, domain_event)
                # The event stays pending, parked after PARK_AFTER failures (an IntegrityError of a
                # concurrent first cursor row passes at the next try, long before that).
                except Exception as exc:  # noqa: BLE001
                    if await self._failed(consumer, domain_event, exc):
                        break  # parked: read on past it
                    return False
                if delivered:
                    self._failures.pop((consumer.name, domain_event.position), None)
                    self._log_delivered(consumer, domain_event)

    @staticmethod
    def _log_delivered(consumer: Consumer, domain_event: DomainEvent) -> None:
        log.info("domain_events.delivered", consumer=consumer.name, topic=consumer.topic.name,
                 case_number=domain_event.case_number, position=domain_event.position)
