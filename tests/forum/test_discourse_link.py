"""The forum link on the Discourse backend (SQLite and PostgreSQL, fake contract-checked Discourse):
bounded verification of open cases' threads, the case -> topic map handed over at start, and
ForumRateLimited honoured."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import Case, CaseEvent, ForumCursor, ForumOutbox
from bridge.departments.service import ensure_shipped_units
from bridge.forum.discourse import DiscourseForum, make_webhook_router
from bridge.forum.link import ForumLink, VerifyCandidate, choose_for_verification
from bridge.health import Health
from bridge.live import LiveEvents
from tests.forum.discourse_server import CATEGORIES, HOTLINE
from tests.forum.test_builtin_support import case_form

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a",
           "HOTLINE_BRIDGE_DISCOURSE_API_KEY": "test-api-key",
           "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET": "test-webhook-secret"}
URL = "/forum/discourse/webhook"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def discourse_config(site, **discourse):
    return validate({"forum": {"backend": "discourse", "discourse": {
        "base_url": site.base_url, "categories": CATEGORIES, **discourse}}}, environ=SECRETS)


class Bridge:
    """The link as the daemon builds it, on a clock the test moves."""

    def __init__(self, site, db, clock, **discourse):
        self.site, self.db, self.clock = site, db, clock
        self.config = discourse_config(site, **discourse)
        self.forum = DiscourseForum.from_config(self.config, timeout_s=5.0)
        self.health = Health()
        self.link = ForumLink(self.config, db, self.health, LiveEvents(), forum=self.forum, clock=clock)

    async def cycle(self) -> tuple[dict, list[tuple[str, str]]]:
        """One cycle: its counts and the HTTP requests Discourse saw."""
        before = len(self.site.requests)
        stats = await self.link.cycle()
        return stats, self.site.requests[before:]

    def forum_health(self) -> dict:
        return self.health.snapshot()["components"]["forum"]

    async def aclose(self) -> None:
        await self.forum.aclose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def bridges(discourse_site, db, clock):
    made = []

    def make(**discourse) -> Bridge:
        bridge = Bridge(discourse_site, db, clock, **discourse)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        await bridge.aclose()


def file_cases(db, clock, n: int, unit: str = "CITY-JCY") -> list[str]:
    with db.session() as session:
        ensure_shipped_units(session)
        numbers = [file_case(session, case_form(department=unit), user=None, now=clock(),
                             zone=timezone(timedelta(hours=8))).number for _ in range(n)]
    return numbers


async def post_cases(bridges, db, clock, n: int, unit: str = "CITY-JCY") -> list[str]:
    """n cases filed and posted by a link without verification; returns their numbers."""
    numbers = file_cases(db, clock, n, unit)
    stats, _ = await bridges(verify_per_cycle=0).cycle()
    assert stats["sent"] == n
    return numbers


def case_row(db, number: str) -> dict:
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case).where(Case.number == number))
        return {"state": case.state.value, "topic": int(case.forum_post_id) if case.forum_post_id else None,
                "deadline_at": case.deadline_at}


def set_deadlines(db, deadlines: dict[str, datetime | None]) -> None:
    with db.session() as session:
        for number, due in deadlines.items():
            session.execute(update(Case).where(Case.number == number).values(deadline_at=due))


def topics_read(requests) -> list[int]:
    return [int(path[3:-5]) for method, path in requests
            if method == "GET" and path.startswith("/t/") and path[3:-5].isdigit()]


def crowd(site, n: int = 31) -> None:
    """Other threads get activity: older topics drop off /latest.json's first page (30)."""
    for i in range(n):
        case = f"96811-2026-{800 + i:06d}"
        site.create_topic(HOTLINE, f"群众来电 [{case}]", f"案件 {case}", 12, case)


# ------------------------------------------------------------------- verification


async def test_a_tag_acceptance_off_the_latest_page_reaches_the_case(bridges, db, clock, discourse_site):
    site = discourse_site
    [number] = await post_cases(bridges, db, clock, 1)
    tid = case_row(db, number)["topic"]
    crowd(site)
    site.edit_topic(tid, tags=["accepted"])  # a tag does not bump the topic
    site.webhook_queue.clear()  # and the webhook is lost

    polling_only = bridges(verify_per_cycle=0)
    await polling_only.cycle()
    assert case_row(db, number)["state"] == "posted"  # polling alone misses it

    bridge = bridges()
    stats, requests = await bridge.cycle()
    assert case_row(db, number)["state"] == "accepted"
    assert stats["verified"] == 1 and stats["applied"] == 1
    assert topics_read(requests) == [tid]
    with db.session(readonly=True) as session:
        kinds = session.scalars(select(CaseEvent.kind).join(Case).where(Case.number == number)
                                .order_by(CaseEvent.id)).all()
    assert kinds == ["filed", "posted", "accepted"]
    # Read again: known ids, nothing changes (and the case, now accepted, still owes its answer).
    clock.advance(601)
    stats, requests = await bridge.cycle()
    assert topics_read(requests) == [tid] and stats["applied"] == 0


async def test_a_fresh_start_reads_no_history_and_verification_fills_in(bridges, db, clock, discourse_site):
    site = discourse_site
    [number] = await post_cases(bridges, db, clock, 1)
    tid = case_row(db, number)["topic"]
    site.reply("jcy_zhang", tid, "已受理，正在核实。")
    chat = site.create_topic("citizen_zhou", "随便聊聊天气怎么样", "天气不错", 1)
    for i in range(120):  # a long history: three /posts.json pages and more
        site.reply("citizen_zhou", chat.topic_id, f"顶帖 {i}")
    site.reply("jcy_zhang", tid, "答复：已处理完毕。")
    site.webhook_queue.clear()
    with db.session() as session:
        session.execute(update(ForumCursor).values(cursor=None))  # the cursor is lost

    bridge = bridges()
    _, requests = await bridge.cycle()
    assert requests.count(("GET", "/posts.json")) == 1  # the newest page only
    assert bridge.link.cursor == str(max(site.posts))
    assert case_row(db, number)["state"] == "answered"  # from the thread itself
    with db.session(readonly=True) as session:
        kinds = session.scalars(select(CaseEvent.kind).join(Case).where(Case.number == number)
                                .order_by(CaseEvent.id)).all()
    assert kinds == ["filed", "posted", "accepted", "answered"]
    site.reply("jcy_zhang", tid, "补充答复：已回访。")
    _, requests = await bridge.cycle()
    assert ("GET", "/posts.json") in requests  # and new posts are read at once


async def test_the_most_critical_cases_go_first_and_none_twice_within_the_interval(
        bridges, db, clock, discourse_site):
    numbers = await post_cases(bridges, db, clock, 6)  # filed in this order: ids ascending
    topic = [case_row(db, n)["topic"] for n in numbers]
    now = clock()
    hours = [5, 6, None, 2, 1, -1]  # c5 overdue, c4 due in 1 h ... c2 no deadline
    set_deadlines(db, {n: None if h is None else now + timedelta(hours=h) for n, h in zip(numbers, hours)})
    bridge = bridges(verify_per_cycle=3)
    order = []
    for _ in range(3):
        _, requests = await bridge.cycle()
        assert len(requests) <= 2 + 3  # /posts.json, /latest.json and at most 3 threads
        order.append(topics_read(requests))
        clock.advance(60)
    c0, c1, c2, c3, c4, c5 = topic
    # Two slots by deadline, the third to the open cases in turn (by id); none twice in 600 s.
    assert order == [[c5, c4, c0], [c3, c1, c2], []]
    clock.advance(600)
    _, requests = await bridge.cycle()
    assert topics_read(requests) == [c5, c4, c0]  # the turn goes on round the ring: c4, c5 are chosen


async def test_the_requests_per_cycle_do_not_grow_with_open_cases(bridges, db, clock, discourse_site):
    counts = {}
    for n, more in ((4, 4), (24, 20)):
        await post_cases(bridges, db, clock, more)
        bridge = bridges(verify_per_cycle=3)
        per_cycle = []
        for _ in range(3):
            _, requests = await bridge.cycle()
            per_cycle.append(len(requests))
            clock.advance(60)
        counts[n] = per_cycle
    assert counts[4] == [2 + 3, 2 + 1, 2]  # 4 open cases: 3, then the last, then none is due again
    assert counts[24] == [2 + 3] * 3


def test_choosing_is_pure_and_skips_the_recently_verified():
    now = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
    ids = iter(range(1, 100))

    def cand(number, hours):
        return VerifyCandidate(next(ids), number, number, "",
                               None if hours is None else now + timedelta(hours=hours))

    a, b, c, d, e = cand("a", -2), cand("b", -2), cand("c", 1), cand("d", None), cand("e", 30)
    last = {"a": now - timedelta(minutes=20), "c": now - timedelta(minutes=5)}
    ten = timedelta(minutes=10)

    def choose(critical, in_turn, count):
        return [x.number for x in choose_for_verification(critical, in_turn, last, now, count=count,
                                                          min_interval=ten)]

    # Same deadline: b (never verified) before a; c was verified 5 minutes ago; d's deadline is unknown.
    assert choose([a, b, c, d], [], 3) == ["b", "a", "d"]
    # The last slot goes to the cases in turn, skipping the recent and the already chosen.
    assert choose([a, b, c, d], [c, b, e], 3) == ["b", "a", "e"]
    assert choose([a, b, c, d], [c], 3) == ["b", "a", "d"]  # nobody's turn: by deadline
    assert choose([a, b], [e], 1) == ["b"]  # one slot: the most critical
    assert choose([a, b], [e], 0) == []
    # Many overdue cases cannot keep the others from their turn.
    overdue = [cand(f"o{i}", -48) for i in range(50)]
    assert choose(overdue, [e], 3) == ["o0", "o1", "e"]


# -------------------------------------------------------- the case -> topic map


async def test_the_link_hands_the_known_topics_over_at_start(bridges, db, clock, discourse_site):
    site = discourse_site
    numbers = await post_cases(bridges, db, clock, 3)
    tid = case_row(db, numbers[1])["topic"]
    bridge = bridges(verify_per_cycle=0)
    await bridge.cycle()
    assert {n: case_row(db, n)["topic"] for n in numbers}.items() <= bridge.forum._case_topic.items()

    site.webhook_queue.clear()
    site.reply("jcy_zhang", tid, "答复：已处理完毕。")
    app = FastAPI()
    app.include_router(make_webhook_router(secret="test-webhook-secret", forum=bridge.forum,
                                           sink=bridge.link.apply_events))
    before = bridge.forum.requests_made
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as hook:
        answers = await site.deliver_webhooks(hook, URL)
    assert [a.status_code for a in answers] == [200]
    assert bridge.forum.requests_made - before == 1  # the thread; no external_id look-up
    assert case_row(db, numbers[1])["state"] == "answered"


# ------------------------------------------------------------------- rate limits


async def test_a_rate_limited_poll_pauses_the_link_until_retry_after(bridges, db, clock, discourse_site):
    site = discourse_site
    await post_cases(bridges, db, clock, 1)
    bridge = bridges()
    await bridge.cycle()
    site.rate_limit_next, site.retry_after = 1, 120
    clock.advance(60)
    _, requests = await bridge.cycle()
    assert requests == [("GET", "/posts.json")]  # answered 429
    health = bridge.forum_health()
    assert health["state"].startswith("down: rate limited by the forum until ")
    until = datetime.fromisoformat(health["rate_limited_until"])
    assert until == (clock() + timedelta(seconds=120)).replace(microsecond=0)
    assert health["state"].endswith(health["rate_limited_until"])

    [queued] = file_cases(db, clock, 1)  # the outbox waits too
    clock.advance(119)
    stats, requests = await bridge.cycle()
    assert requests == [] and stats["sent"] == 0
    assert case_row(db, queued)["state"] == "queued"
    assert bridge.forum_health()["state"].startswith("down: rate limited")

    clock.advance(2)
    stats, requests = await bridge.cycle()
    assert stats["sent"] == 1 and ("GET", "/posts.json") in requests
    assert case_row(db, queued)["state"] == "posted"
    assert bridge.forum_health()["state"] == "up"
    assert "rate_limited_until" not in bridge.forum_health()


async def test_a_rate_limited_post_stops_the_outbox_pass(bridges, db, clock, discourse_site):
    site = discourse_site
    first, second = file_cases(db, clock, 2)
    bridge = bridges()
    site.rate_limit_next, site.retry_after = 1, 300
    stats, requests = await bridge.cycle()
    assert len(requests) == 1  # the first filing's look-up, answered 429; nothing after it
    assert stats["failed"] == 1 and stats["sent"] == 0
    with db.session(readonly=True) as session:
        attempts = dict(session.execute(select(Case.number, ForumOutbox.attempts)
                                        .join(Case, Case.id == ForumOutbox.case_id)).all())
        failures = session.scalar(select(func.count()).select_from(CaseEvent)
                                  .where(CaseEvent.kind == "forum_post_failed"))
    assert attempts == {first: 1, second: 0} and failures == 1  # the second kept its turn
    assert bridge.forum_health()["state"].startswith("down: rate limited by the forum until ")

    clock.advance(301)
    stats, _ = await bridge.cycle()
    assert stats["sent"] == 2
    assert {case_row(db, n)["state"] for n in (first, second)} == {"posted"}
