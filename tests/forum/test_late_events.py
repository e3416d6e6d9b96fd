"""A thread event that arrives after a newer one cannot set its case back (bridge.forum.service),
on the builtin board and on the contract-checked fake Discourse, on SQLite and PostgreSQL.

Delivery order is not the thread's order: the board's own write, polling, webhooks (redelivered
after a 503) and verification each hand events over when they can.  An event older than the
newest applied to the case is kept on the timeline (``late_event``) and changes nothing; the
domain event ``case_answered`` is published once per answer that was applied.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from bridge.accounts.service import get_user
from bridge.cases.service import file_case, get_case
from bridge.db.models import CaseEvent, CaseState
from bridge.domain_events import CASE_ANSWERED, Consumer, pending_events
from bridge.forum import service
from bridge.forum.adapter import ThreadEvent, ThreadEventKind
from bridge.forum.builtin import board
from bridge.forum.discourse import DiscourseForum, make_webhook_router
from tests.forum.discourse_server import CATEGORIES, HOTLINE
from tests.forum.test_builtin_support import case_form
from tests.forum.test_discourse import URL, drain, new_post

ZONE = timezone(timedelta(hours=8))
WEDNESDAY_10 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 in the site's zone
A_LISTENER = Consumer("late-events-test", CASE_ANSWERED, handle=lambda session, event: None)


# ------------------------------------------------------------------------ helpers


def deliver(db, events: list[ThreadEvent], deadlines) -> list[str]:
    """Apply events as the forum link does; returns the kinds that changed the case."""
    with db.session() as session:
        return [change.kind for change in service.apply_events(session, events, deadlines)]


def case_of(db, number: str):
    with db.session(readonly=True) as session:
        case = get_case(session, number)
        session.expunge_all()
        return case


def timeline(db, number: str) -> list[tuple[str, str | None]]:
    """(kind, the forum event a late entry carries) of every thread entry, in order."""
    return [(e.kind, e.detail.get("forum_event") if e.kind == service.LATE_EVENT else None)
            for e in case_of(db, number).events if e.actor == service.FORUM_ACTOR and e.kind != "posted"]


def published_answers(db) -> list[str]:
    """The case_answered domain events a new consumer would be handed."""
    with db.session(readonly=True) as session:
        return [e.kind for e in pending_events(session, A_LISTENER, limit=1000)]


def case_events(db) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(CaseEvent))


# ------------------------------------------------------------------ the builtin board


class Thread:
    """A case's thread on the builtin board, acted on by the spokespeople of ``people``;
    each step returns the ThreadEvent the board made (not yet applied to the case)."""

    def __init__(self, db, number: str, post_id: int, clock: list[datetime]) -> None:
        self.db, self.number, self.post_id, self.clock = db, number, post_id, clock

    def _act(self, action, *args) -> ThreadEvent:
        with self.db.session() as session:
            return board.thread_event(action(session, *args, self.clock[0]))

    def _user(self, session, short: str):
        return get_user(session, f"fyr-{short}")

    def accept(self, short: str) -> ThreadEvent:
        return self._act(lambda s, now: board.accept(s, self.post_id, self._user(s, short), now))

    def forward(self, short: str, to_unit: str) -> ThreadEvent:
        return self._act(lambda s, now: board.forward(s, self.post_id, self._user(s, short), to_unit,
                                                      "此事由其他单位负责，已转交办理。", now))

    def answer(self, short: str, text: str) -> ThreadEvent:
        return self._act(lambda s, now: board.answer(s, self.post_id, self._user(s, short), text, now))

    def follow_up(self, text: str, key: str) -> ThreadEvent:
        return self._act(lambda s, now: board.follow_up(s, self.number, text, key, now)[1])


@pytest.fixture
def clock() -> list[datetime]:
    """The board's time; tests move it (``clock[0] += ...``) or leave every step at one instant."""
    return [WEDNESDAY_10]


@pytest.fixture
async def thread(db, people, worker, clock) -> Thread:
    """A case filed at the procuratorate (CITY-JCY) and posted to the board by the outbox."""
    with db.session() as session:
        number = file_case(session, case_form(department="CITY-JCY"), user=None, now=clock[0], zone=ZONE).number
    await worker.run_once()
    case = case_of(db, number)
    assert case.state is CaseState.POSTED
    return Thread(db, number, int(case.forum_post_id), clock)


async def test_late_acceptance_and_forward_after_the_answer_leave_it_answered(db, thread, deadlines, forum):
    # Every step at the same instant: the board's own order (its event ids) tells them apart.
    accepted = thread.accept("jcy")
    forwarded = thread.forward("jcy", "CITY-ZJJ")
    accepted_there = thread.accept("zjj")
    answer = thread.answer("zjj", "答复：产权证将于下月统一办理。")

    assert deliver(db, [answer], deadlines) == ["answered"]  # the board's write applied it at once
    assert deliver(db, [accepted, forwarded, accepted_there], deadlines) == []  # polling, later
    case = case_of(db, thread.number)
    assert case.state is CaseState.ANSWERED and case.deadline_at is None
    assert case.department.code == "CITY-ZJJ"  # the unit that answered holds it
    assert timeline(db, thread.number) == [
        ("answered", None), ("late_event", "accepted"), ("late_event", "forwarded"), ("late_event", "accepted")]
    late = [e.detail for e in case.events if e.kind == service.LATE_EVENT]
    assert {d["late"] for d in late} == {"older"} and {d["newer_event"] for d in late} == {answer.event_id}
    assert late[1]["to_unit"] == "CITY-ZJJ" and late[1]["text"] == "此事由其他单位负责，已转交办理。"

    # The whole thread polled again (the same ids): nothing more, and one answer published.
    rows = case_events(db)
    polled = (await forum.fetch_events(None)).events
    assert [e.event_id for e in polled] == [e.event_id for e in (accepted, forwarded, accepted_there, answer)]
    assert deliver(db, polled, deadlines) == [] and case_events(db) == rows
    assert published_answers(db) == ["answered"]


async def test_a_late_answer_after_the_follow_up_leaves_it_reopened(db, thread, deadlines, clock):
    accepted = thread.accept("jcy")
    clock[0] += timedelta(hours=1)
    answer = thread.answer("jcy", "答复：已责成街道核实处理。")
    clock[0] += timedelta(days=1)
    follow_up = thread.follow_up("朱女士追问：何时能办好？", "fu-1")

    assert deliver(db, [accepted, follow_up], deadlines) == ["accepted", "follow_up_asked"]
    assert deliver(db, [answer], deadlines) == []
    case = case_of(db, thread.number)
    assert case.state is CaseState.REOPENED
    assert case.deadline_at == deadlines.answer_due(clock[0])  # owed from the follow-up
    assert published_answers(db) == []  # the late answer is not announced

    clock[0] += timedelta(hours=2)
    follow_up_answer = thread.answer("jcy", "答复：下月 15 日起在政务中心办理。")
    assert deliver(db, [follow_up_answer, answer, follow_up_answer], deadlines) == ["follow_up_answered"]
    assert case_of(db, thread.number).state is CaseState.ANSWERED
    assert published_answers(db) == ["follow_up_answered"]
    assert timeline(db, thread.number) == [("accepted", None), ("follow_up_asked", None),
                                           ("late_event", "answered"), ("follow_up_answered", None)]


async def test_a_whole_life_delivered_twice_applies_every_step(db, thread, deadlines, forum, clock):
    """accept -> forward -> accept by the new unit -> answer -> follow-up -> its answer, each step
    applied by the board's write and again by polling: nothing is late, nothing applied twice."""
    steps = [lambda: thread.accept("jcy"), lambda: thread.forward("jcy", "CITY-ZJJ"),
             lambda: thread.accept("zjj"), lambda: thread.answer("zjj", "答复：产权证将于下月统一办理。"),
             lambda: thread.follow_up("朱女士追问：具体哪天？", "fu-1"),
             lambda: thread.answer("zjj", "答复：下月 15 日起。")]
    cursor = None
    applied = []
    for step in steps:
        clock[0] += timedelta(minutes=30)
        applied += deliver(db, [step()], deadlines)
        page = await forum.fetch_events(cursor)
        cursor = page.cursor
        assert deliver(db, page.events, deadlines) == []
    assert applied == ["accepted", "forwarded", "accepted", "answered", "follow_up_asked", "follow_up_answered"]
    case = case_of(db, thread.number)
    assert case.state is CaseState.ANSWERED and case.department.code == "CITY-ZJJ"
    assert all(kind != service.LATE_EVENT for kind, _ in timeline(db, thread.number))
    assert published_answers(db) == ["answered", "follow_up_answered"]


async def test_a_thread_sent_back_to_its_first_unit(db, thread, deadlines):
    """A -> B -> A: the first unit's second acceptance is news, not a late copy of its first."""
    events = [thread.accept("jcy"), thread.forward("jcy", "CITY-ZJJ"), thread.forward("zjj", "CITY-JCY"),
              thread.accept("jcy"), thread.answer("jcy", "答复：本院已依法处理。")]
    assert deliver(db, events, deadlines) == ["accepted", "forwarded", "forwarded", "accepted", "answered"]
    case = case_of(db, thread.number)
    assert case.state is CaseState.ANSWERED and case.department.code == "CITY-JCY"

    # Delivered the other way round, the answer stands and the rest is kept as late.
    with db.session() as session:
        other = file_case(session, case_form(department="CITY-JCY"), user=None, now=WEDNESDAY_10, zone=ZONE)
        moved = [ThreadEvent(**{**vars(e), "event_id": e.event_id + ":other", "case_number": other.number})
                 for e in events]
    assert deliver(db, list(reversed(moved)), deadlines) == ["answered"]
    assert case_of(db, other.number).state is CaseState.ANSWERED


# ------------------------------------------------------------- ordering, in detail


def hand_made(number, event_id, kind, at, sequence, unit="CITY-JCY") -> ThreadEvent:
    return ThreadEvent(event_id=event_id, kind=kind, case_number=number, at=at, unit_code=unit,
                       sequence=sequence)


@pytest.fixture
def number(db, people) -> str:
    with db.session() as session:
        return file_case(session, case_form(department="CITY-JCY"), user=None, now=WEDNESDAY_10, zone=ZONE).number


def test_a_time_the_bridge_saw_orders_nothing_after_it(db, number, deadlines):
    """A tag acceptance carries the time the bridge saw it (no sequence): an answer the unit
    posted before that moment, delivered after it, is still the answer."""
    seen = hand_made(number, "d:tag", ThreadEventKind.ACCEPTED, WEDNESDAY_10 + timedelta(minutes=10), None)
    answer = hand_made(number, "d:post:5", ThreadEventKind.ANSWERED, WEDNESDAY_10 + timedelta(minutes=5), 5)
    assert deliver(db, [seen, answer], deadlines) == ["accepted", "answered"]
    # ...and seen once more after the answer, the acceptance is nobody's news.
    again = hand_made(number, "d:tag:2", ThreadEventKind.ACCEPTED, WEDNESDAY_10 + timedelta(minutes=20), None)
    assert deliver(db, [again], deadlines) == []
    [late] = [e.detail for e in case_of(db, number).events if e.kind == service.LATE_EVENT]
    assert late["late"] == "not_awaited" and case_of(db, number).state is CaseState.ANSWERED


def test_why_late():
    at = WEDNESDAY_10
    newest = service.ThreadPlace(at, 4, "d:post:4")

    def late(kind, when, sequence, awaited=True):
        return service.why_late(hand_made("n", "e", kind, when, sequence), newest, acceptance_awaited=awaited)

    assert late(ThreadEventKind.ANSWERED, at - timedelta(seconds=1), 9) == "older"
    assert late(ThreadEventKind.ANSWERED, at, 3) == "older"  # the same time: the thread's order
    assert late(ThreadEventKind.ANSWERED, at, 5) is None
    assert late(ThreadEventKind.ANSWERED, at, None) is None  # no order to compare: not older
    assert late(ThreadEventKind.ANSWERED, at + timedelta(seconds=1), 1) is None
    assert late(ThreadEventKind.ACCEPTED, at + timedelta(hours=1), None, awaited=False) == "not_awaited"
    assert late(ThreadEventKind.ACCEPTED, at + timedelta(hours=1), 5) is None
    first = hand_made("n", "e", ThreadEventKind.ACCEPTED, at, 1)
    assert service.why_late(first, None, acceptance_awaited=True) is None


def test_which_unit_owes_its_acceptance():
    def applied(kind, unit, to_unit=None):  # unit: who acted, for the reader; the rule needs only to_unit
        return service.AppliedEvent(kind=kind, place=service.ThreadPlace(WEDNESDAY_10, None, "x"), time_seen=False,
                                    to_unit=to_unit)

    awaited = service.acceptance_awaited
    assert awaited([], "A")  # posted to it, nothing since
    assert awaited([applied("follow_up_asked", "A")], "A")  # a follow-up before acceptance
    assert not awaited([applied("accepted", "A")], "A")
    assert not awaited([applied("accepted", "A"), applied("answered", "A"), applied("follow_up_asked", "A")], "A")
    to_b = [applied("accepted", "A"), applied("forwarded", "A", "B")]
    assert awaited(to_b, "B") and not awaited(to_b, "A")
    assert awaited([*to_b, applied("accepted", "B"), applied("forwarded", "B", "A")], "A")  # A -> B -> A
    assert not awaited([applied("answered", "B")], "A")  # B answered: the forward to B came late


async def test_a_follow_up_before_the_acceptance_does_not_make_the_acceptance_late(db, thread, deadlines, clock):
    follow_up = thread.follow_up("朱女士补充：问题在三楼。", "fu-0")
    clock[0] += timedelta(minutes=20)
    accepted = thread.accept("jcy")
    assert deliver(db, [follow_up, accepted], deadlines) == ["follow_up_asked", "accepted"]
    case = case_of(db, thread.number)
    assert case.state is CaseState.ACCEPTED and case.deadline_at == deadlines.answer_due(clock[0])


# --------------------------------------------------------------------- on Discourse


@pytest.fixture
async def discourse(discourse_site):
    client = DiscourseForum(base_url=discourse_site.base_url, api_username=HOTLINE,
                            api_key=discourse_site.api_key, categories=CATEGORIES, timeout_s=5.0)
    yield client
    await client.aclose()


@pytest.fixture
async def topic(db, people, discourse, discourse_site, deadlines) -> tuple[str, int]:
    """A case filed at the procuratorate and posted to Discourse: (case number, topic id)."""
    with db.session() as session:
        number = file_case(session, case_form(department="CITY-JCY"), user=None,
                           now=datetime.now(timezone.utc), zone=ZONE).number
    ref = await discourse.create_post(new_post(case=number, unit="CITY-JCY"))
    with db.session() as session:
        service.mark_posted(session, number, ref, datetime.now(timezone.utc), deadlines)
    discourse_site.webhook_queue.clear()
    return number, int(ref.remote_id)


async def deliver_webhooks(site, discourse, db, deadlines, order: list[int] | None = None) -> None:
    """Send the queued webhooks, in ``order`` (indexes into the queue; default: as queued),
    to the webhook route whose sink is the forum service."""
    if order is not None:
        site.webhook_queue[:] = [site.webhook_queue[i] for i in order]
    app = FastAPI()
    app.include_router(make_webhook_router(secret="test-webhook-secret", forum=discourse,
                                           sink=lambda events: deliver(db, events, deadlines)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as hook:
        answers = await site.deliver_webhooks(hook, URL)
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]


async def test_discourse_late_acceptances_and_forward_after_the_answer(db, topic, discourse, discourse_site,
                                                                       deadlines):
    site, (number, tid) = discourse_site, topic
    _, cursor = await drain(discourse)  # polling was running before
    site.edit_topic(tid, tags=["accepted"])  # 0: the tag (its time: when the bridge sees it)
    site.reply("jcy_zhang", tid, "已受理。")  # 1
    site.edit_topic(tid, category_id=CATEGORIES["CITY-ZJJ"], tags=[])  # 2: the move
    site.reply("jcy_zhang", tid, "经查，此事不属本院职责，已转市住房和城乡建设局办理。")  # 3: the note
    site.reply("zjj_wang", tid, "已受理，正在调查。")  # 4
    site.reply("zjj_wang", tid, "答复：产权证将于下月统一办理。")  # 5
    # The answer's delivery goes through first (the others failed and are redelivered later).
    await deliver_webhooks(site, discourse, db, deadlines, order=[5, 0, 1, 2, 3, 4])
    case = case_of(db, number)
    assert case.state is CaseState.ANSWERED and case.deadline_at is None and case.department.code == "CITY-ZJJ"
    assert timeline(db, number) == [("answered", None), ("late_event", "accepted"), ("late_event", "forwarded"),
                                    ("late_event", "accepted")]
    # The tag, seen after the answer, carries no time of the unit's: it is an acceptance nobody awaits.
    assert [(e.detail["forum_event"], e.detail["late"]) for e in case.events if e.kind == service.LATE_EVENT] == [
        ("accepted", "not_awaited"), ("forwarded", "older"), ("accepted", "older")]

    # Polling and verification see the same ids: nothing changes, one answer published.
    rows = case_events(db)
    polled, _ = await drain(discourse, cursor)
    verified = await discourse.verify_threads([await discourse.find_post(number)])
    assert {e.kind for e in verified} >= {ThreadEventKind.FORWARDED, ThreadEventKind.ANSWERED}
    assert deliver(db, polled + verified, deadlines) == [] and case_events(db) == rows
    assert published_answers(db) == ["answered"]


async def test_discourse_a_late_answer_after_the_follow_up(db, topic, discourse, discourse_site, deadlines):
    site, (number, tid) = discourse_site, topic
    ref = await discourse.find_post(number)
    site.reply("jcy_zhang", tid, "已受理。")  # 0
    site.reply("jcy_zhang", tid, "答复：已责成街道核实处理。")  # 1
    await discourse.post_follow_up(ref, "朱女士追问：何时能办好？", idempotency_key=f"{number}:fu:1")  # 2
    await deliver_webhooks(site, discourse, db, deadlines, order=[0, 2, 1])  # the answer's delivery is late
    case = case_of(db, number)
    assert case.state is CaseState.REOPENED and case.deadline_at is not None
    assert timeline(db, number) == [("accepted", None), ("follow_up_asked", None), ("late_event", "answered")]
    assert published_answers(db) == []

    site.reply("jcy_zhang", tid, "答复：下月 15 日起在政务中心办理。")
    await deliver_webhooks(site, discourse, db, deadlines)
    assert case_of(db, number).state is CaseState.ANSWERED
    # Verification reads the whole thread again: the old answer stays late, one answer published.
    assert deliver(db, await discourse.verify_threads([ref]), deadlines) == []
    assert case_of(db, number).state is CaseState.ANSWERED
    assert published_answers(db) == ["follow_up_answered"]
