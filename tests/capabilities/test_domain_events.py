"""Domain events between capabilities (bridge.domain_events): an answer reaches each consumer
exactly once, through duplicate deliveries, failures and restarts, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog
from sqlalchemy import select

from bridge.capability import Runtime
from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import CallbackTask, Cursor
from bridge.departments.service import ensure_shipped_units
from bridge.domain_events import CASE_ANSWERED, Consumer, DomainEvents
from bridge.forum import service
from bridge.forum.adapter import ThreadEvent, ThreadEventKind
from bridge.forum.link import ForumLink
from bridge.health import Health
from bridge.live import LiveEvents
from tests.forum.test_builtin_support import SECRETS, case_form

ZONE = ZoneInfo("Asia/Shanghai")
FILED_AT = datetime(2026, 11, 25, 9, 50, tzinfo=ZONE)
NEVER = 3600.0  # a publisher that only delivers when woken (or at start)


@pytest.fixture
def config(db_url):
    return validate({"database": {"url": db_url}}, environ=SECRETS)


@pytest.fixture
def deadlines(config):
    return service.Deadlines.from_config(config)


def new_case(db) -> str:
    with db.session() as session:
        ensure_shipped_units(session)
        return file_case(session, {**case_form(), "department": "CITY-LJQ"}, user=None, now=FILED_AT, zone=ZONE).number


def answer(number: str, event_id: str, kind=ThreadEventKind.ANSWERED) -> ThreadEvent:
    return ThreadEvent(event_id=event_id, kind=kind, case_number=number, at=FILED_AT + timedelta(days=1),
                       unit_code="CITY-LJQ", text="已答复", actor="王芳")


class Probe:
    """A consumer that records, in the transaction that moves its cursor, a row per event it
    handled (its "work"), and in memory every call."""

    def __init__(self, name="probe", fail_first=0):
        self.calls: list[str] = []
        self.fail_first = fail_first
        self.consumer = Consumer(name, CASE_ANSWERED, self.handle)

    def handle(self, session, event):
        self.calls.append(event.case_number)
        session.add(Cursor(name=f"work:{self.consumer.name}:{event.position}", position=event.case_number))
        session.flush()
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("consumer bug")


def work_rows(db, name="probe") -> list[str]:
    with db.session(readonly=True) as session:
        return list(session.scalars(select(Cursor.position).where(Cursor.name.like(f"work:{name}:%"))
                                    .order_by(Cursor.name)))


async def publisher_with(db, *probes, poll_s=NEVER) -> DomainEvents:
    publisher = DomainEvents(db, poll_s=poll_s)
    for probe in probes:
        publisher.register(probe.consumer)
    await publisher.start()
    return publisher


async def eventually(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_an_answer_delivered_by_webhook_and_by_polling_reaches_the_consumer_once(db, config, deadlines):
    number = new_case(db)
    probe = Probe()
    publisher = await publisher_with(db, probe)
    link = ForumLink(config, db, Health(), LiveEvents(), deadlines=deadlines)
    try:
        accepted = answer(number, "d:accept", ThreadEventKind.ACCEPTED)
        assert await link.apply_events([accepted]) == 1  # no domain event: nothing delivered
        # The daemon gives the webhook and polling the same sink (ForumLink.apply_events).
        assert await link.apply_events([answer(number, "d:answer")]) == 1  # the webhook
        assert await link.apply_events([answer(number, "d:answer")]) == 0  # polling, a moment later
        # Delivered because the forum service woke the publisher (it never polls here).
        await eventually(lambda: work_rows(db) == [number])
        await publisher.deliver_pending()
        assert probe.calls == [number] and work_rows(db) == [number]
    finally:
        await publisher.stop()


async def test_an_answer_committed_while_no_publisher_ran_is_delivered_at_the_next_start_once(db, deadlines):
    number = new_case(db)
    first = Probe()
    publisher = await publisher_with(db, first)
    publisher.wake = lambda: None  # the daemon stops between the commit and the wake-up
    with db.session() as session:
        assert service.apply_event(session, answer(number, "b:9"), deadlines) is not None
    await publisher.stop()
    assert first.calls == [] and work_rows(db) == []

    again = Probe()
    publisher = await publisher_with(db, again)  # the restart's catch-up
    await publisher.stop()
    assert again.calls == [number] and work_rows(db) == [number]

    third = Probe()
    publisher = await publisher_with(db, third)  # and never again
    await publisher.stop()
    assert third.calls == [] and work_rows(db) == [number]


async def test_a_failed_handling_is_rolled_back_and_tried_again_from_the_same_event(db, deadlines):
    numbers = [new_case(db), new_case(db)]
    probe = Probe(fail_first=1)
    with db.session() as session:
        service.apply_events(session, [answer(n, f"b:{i}") for i, n in enumerate(numbers)], deadlines)
    with structlog.testing.capture_logs() as logs:
        publisher = await publisher_with(db, probe)
    try:
        assert work_rows(db) == []  # the failure rolled back its work and kept the cursor
        failure = next(entry for entry in logs if entry["event"] == "domain_events.consumer_failed")
        assert failure["case_number"] == numbers[0] and failure["consumer"] == "probe"
        assert await publisher.deliver_pending()
        assert probe.calls == [numbers[0], numbers[0], numbers[1]]
        assert sorted(work_rows(db)) == sorted(numbers)
    finally:
        await publisher.stop()


async def test_consumers_have_their_own_cursor(db, deadlines):
    number = new_case(db)
    with db.session() as session:
        service.apply_event(session, answer(number, "b:1", ThreadEventKind.FOLLOW_UP_ANSWERED), deadlines)
    early = Probe("early")
    publisher = await publisher_with(db, early)
    await publisher.stop()
    late = Probe("late")  # a consumer installed later starts at the beginning of the timeline
    publisher = await publisher_with(db, early, late)
    await publisher.stop()
    assert early.calls == [number] and late.calls == [number]


async def test_an_answer_that_commits_after_a_later_one_is_not_passed_over(db, deadlines):
    """Two answers written at once: the second may not commit (and be delivered) while the
    first, with the lower id, is still to commit, or the cursor would pass over it."""
    first, second = new_case(db), new_case(db)
    probe = Probe()
    publisher = await publisher_with(db, probe)
    hold, written = threading.Event(), threading.Event()

    def slow_answer():
        with db.session() as session:
            service.apply_event(session, answer(first, "b:first"), deadlines)
            written.set()
            hold.wait(10)

    def quick_answer():
        with db.session() as session:
            service.apply_event(session, answer(second, "b:second"), deadlines)

    slow = threading.Thread(target=slow_answer)
    slow.start()
    try:
        assert written.wait(10)
        quick = threading.Thread(target=quick_answer)
        quick.start()
        quick.join(1.0)
        assert quick.is_alive(), "the later answer committed while the earlier one was open"
        await publisher.deliver_pending()
        assert probe.calls == []
    finally:
        hold.set()
        slow.join(10)
    quick.join(10)
    await eventually(lambda: len(work_rows(db)) == 2)
    await publisher.stop()
    assert probe.calls == [first, second]


async def test_the_callbacks_capability_makes_one_task_per_answer_across_restarts(db, config, deadlines):
    from callbacks.capability import CallbacksCapability, answer_consumer
    from callbacks.tasks import CallbackPolicy

    capability = CallbacksCapability()
    runtime = Runtime(config, db, Health(), LiveEvents(), capabilities=(capability,))
    shipped = next(c for c in capability.consumers(runtime) if c.topic is CASE_ANSWERED)
    assert shipped.topic is CASE_ANSWERED and shipped.cursor_name == "events:callback-tasks"
    # The shipped consumer with the clock of the test (an answer weeks old makes no task).
    consumer = answer_consumer(CallbackPolicy.of(config), clock=lambda: FILED_AT + timedelta(days=1, hours=1))
    assert consumer.cursor_name == shipped.cursor_name
    number = new_case(db)
    with db.session() as session:
        service.apply_event(session, answer(number, "b:1"), deadlines)
        service.apply_event(session, answer(number, "b:1"), deadlines)  # the same answer seen twice
    for _ in range(2):  # two daemon starts
        publisher = DomainEvents(db, poll_s=NEVER)
        publisher.register(consumer)
        await publisher.start()
        await publisher.stop()
    with db.session(readonly=True) as session:
        tasks = session.scalars(select(CallbackTask)).all()
        assert [(t.case.number, t.reason.value) for t in tasks] == [(number, "answer")]
        assert session.get(Cursor, "events:callback-tasks").position is not None


class BatchProbe(Probe):
    """A consumer that also takes a list of events at once; ``bad`` makes a batch holding that
    case fail, and its one-at-a-time handling too while ``fail_first`` lasts."""

    def __init__(self, name="probe", bad=None, fail_first=0):
        super().__init__(name, fail_first)
        self.bad = bad
        self.batches: list[list[str]] = []
        self.consumer = Consumer(name, CASE_ANSWERED, self.handle, handle_batch=self.handle_batch)

    def handle(self, session, event):
        if event.case_number == self.bad:
            super().handle(session, event)
        else:
            Probe(self.consumer.name).handle(session, event)
            self.calls.append(event.case_number)

    def handle_batch(self, session, events):
        self.batches.append([e.case_number for e in events])
        for event in events:
            session.add(Cursor(name=f"work:{self.consumer.name}:{event.position}", position=event.case_number))
        session.flush()
        if self.bad in self.batches[-1]:
            raise RuntimeError("consumer bug")


async def test_a_batch_consumer_gets_the_pending_events_in_one_transaction_once(db, deadlines):
    numbers = [new_case(db) for _ in range(3)]
    with db.session() as session:
        for k, number in enumerate(numbers):
            service.apply_event(session, answer(number, f"b:{k}"), deadlines)
    probe = BatchProbe()
    publisher = await publisher_with(db, probe)  # the catch-up
    await publisher.stop()
    assert probe.batches == [numbers] and probe.calls == [] and sorted(work_rows(db)) == sorted(numbers)
    again = BatchProbe()
    publisher = await publisher_with(db, again)  # a restart: nothing twice
    await publisher.stop()
    assert again.batches == [] and sorted(work_rows(db)) == sorted(numbers)


async def test_a_failing_batch_is_delivered_one_at_a_time_and_only_the_failing_event_waits(db, deadlines):
    numbers = [new_case(db) for _ in range(3)]
    with db.session() as session:
        for k, number in enumerate(numbers):
            service.apply_event(session, answer(number, f"b:{k}"), deadlines)
    probe = BatchProbe(bad=numbers[1], fail_first=1)
    publisher = await publisher_with(db, probe)
    try:
        # The batch was rolled back (none of its work kept); the first event went through alone,
        # the failing one is pending, and the one after it waits behind it (order is kept).
        assert probe.batches == [numbers] and probe.calls == numbers[:2]
        assert work_rows(db) == [numbers[0]]
        assert await publisher.deliver_pending()  # tried again: the batch from the failing event
        assert probe.batches[1:] == [numbers[1:]] and probe.calls == [numbers[0], numbers[1], numbers[1], numbers[2]]
        assert sorted(work_rows(db)) == sorted(numbers)
    finally:
        await publisher.stop()


class PoisonProbe(Probe):
    """A consumer that always fails on one case (``bad``) until ``fixed``: a poison event."""

    def __init__(self, bad, name="probe", error=RuntimeError):
        super().__init__(name)
        self.bad, self.error, self.fixed = bad, error, False

    def handle(self, session, event):
        if event.case_number == self.bad and not self.fixed:
            self.calls.append(event.case_number)
            raise self.error("consumer bug")
        super().handle(session, event)


def parked_rows(db) -> list[tuple]:
    from bridge.db.models import ParkedDomainEvent

    with db.session(readonly=True) as session:
        return [(p.consumer, p.failures, p.retry_requested_at is not None, p.resolved_at is not None)
                for p in session.scalars(select(ParkedDomainEvent).order_by(ParkedDomainEvent.id))]


def cli(db_url, tmp_path, monkeypatch, *args):
    import json

    from click.testing import CliRunner

    from bridge.domain_events_cli import events

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.toml"
    path.write_text(f"[database]\nurl = {json.dumps(db_url)}\n", encoding="utf-8")
    return CliRunner().invoke(events, [*args, "-c", str(path)])


async def test_an_event_failing_park_after_times_is_parked_and_the_later_ones_go_on(db, db_url, deadlines, tmp_path,
                                                                                     monkeypatch):
    numbers = [new_case(db), new_case(db), new_case(db)]
    with db.session() as session:
        service.apply_events(session, [answer(n, f"b:{i}") for i, n in enumerate(numbers)], deadlines)
    probe = PoisonProbe(bad=numbers[1])
    health = Health()
    publisher = DomainEvents(db, poll_s=NEVER, park_after=3, health=health)
    publisher.register(probe.consumer)
    with structlog.testing.capture_logs() as logs:
        await publisher.start()  # failure 1
        assert work_rows(db) == [numbers[0]]  # the one after the poison waits behind it
        assert not await publisher.deliver_pending()  # failure 2
        assert parked_rows(db) == [] and "domain_events.parked" not in health.snapshot()["warnings"]
        assert await publisher.deliver_pending()  # failure 3: parked, and the drain reads on past it
    try:
        assert sorted(work_rows(db)) == sorted([numbers[0], numbers[2]])
        assert parked_rows(db) == [("probe", 3, False, False)]
        parked = next(entry for entry in logs if entry["event"] == "domain_events.parked")
        assert parked["case_number"] == numbers[1] and parked["failures"] == 3
        assert "1 domain event(s) parked" in health.snapshot()["warnings"]["domain_events.parked"]
        listed = cli(db_url, tmp_path, monkeypatch, "parked")
        assert listed.exit_code == 0 and numbers[1] in listed.output and "consumer bug" in listed.output
        assert await publisher.deliver_pending() and probe.calls.count(numbers[1]) == 3  # not tried by itself

        refused = cli(db_url, tmp_path, monkeypatch, "retry", "999")
        assert refused.exit_code == 1 and "no parked event with id 999" in refused.output
        parked_id = int(listed.output.splitlines()[2].split()[0])
        assert cli(db_url, tmp_path, monkeypatch, "retry", str(parked_id)).exit_code == 0
        assert await publisher.deliver_pending()  # still broken: counted, kept, no longer asked for
        assert parked_rows(db) == [("probe", 4, False, False)]
        probe.fixed = True
        assert cli(db_url, tmp_path, monkeypatch, "retry", str(parked_id)).exit_code == 0
        assert await publisher.deliver_pending()
        assert sorted(work_rows(db)) == sorted(numbers) and parked_rows(db) == [("probe", 4, True, True)]
        assert "domain_events.parked" not in health.snapshot()["warnings"]
        again = cli(db_url, tmp_path, monkeypatch, "retry", str(parked_id))
        assert again.exit_code == 1 and "handled already" in again.output
    finally:
        await publisher.stop()
    restarted = Probe()  # a restart hands nothing twice, the parked one included
    publisher = await publisher_with(db, restarted)
    await publisher.stop()
    assert restarted.calls == []


async def test_the_database_being_away_is_never_counted_against_an_event(db, deadlines):
    from sqlalchemy.exc import OperationalError

    def unreachable(_message):
        return OperationalError("SELECT 1", {}, Exception("connection refused"))

    number = new_case(db)
    with db.session() as session:
        service.apply_event(session, answer(number, "b:0"), deadlines)
    probe = PoisonProbe(bad=number, error=unreachable)
    publisher = DomainEvents(db, poll_s=NEVER, park_after=2)
    publisher.register(probe.consumer)
    await publisher.start()
    try:
        for _ in range(3):
            assert not await publisher.deliver_pending()
        assert parked_rows(db) == [] and probe.calls.count(number) == 4
        probe.fixed = True
        assert await publisher.deliver_pending() and work_rows(db) == [number]
    finally:
        await publisher.stop()
