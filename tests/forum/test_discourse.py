"""The Discourse backend against a fake Discourse held to the published API description."""
from __future__ import annotations

import inspect
import time

import httpx
import pytest
from fastapi import FastAPI

from bridge.forum.adapter import Forum, ForumError, ForumRateLimited, ForumRejected, NewPost, ThreadEventKind
from bridge.forum.discourse import DiscourseForum, make_webhook_router, sign
from tests.forum.discourse_server import CATEGORIES, HOTLINE, make_site

CASE = "96811-2026-000123"


def new_post(case=CASE, unit="CITY-JCY") -> NewPost:
    return NewPost(case_number=case, unit_code=unit, title="住房问题咨询",
                   body=f"朱女士来电反映：小区房屋产权问题。\n\n案件编号 {case}，经 96811 热线转来。")


@pytest.fixture
async def forum(discourse_site):
    client = DiscourseForum(base_url=discourse_site.base_url, api_username=HOTLINE,
                            api_key=discourse_site.api_key, categories=CATEGORIES, timeout_s=2.0)
    yield client
    await client.aclose()


def topics_for(site, case):
    return [t for t in site.topics.values() if t.external_id == case]


# ------------------------------------------------------------------- protocol, boards


async def test_is_a_forum(forum):
    assert isinstance(forum, Forum)


async def test_list_boards_names_the_mapped_categories(forum):
    boards = {b.unit_code: b for b in await forum.list_boards()}
    assert set(boards) == set(CATEGORIES)
    assert boards["CITY-ZJJ"].name == "市住房和城乡建设局"
    assert boards["CITY-ZJJ"].remote_id == "13"


# ------------------------------------------------------------------------- filing


async def test_create_post_uses_the_hotline_account_category_and_external_id(forum, discourse_site):
    ref = await forum.create_post(new_post())
    [topic] = topics_for(discourse_site, CASE)
    assert ref.remote_id == str(topic.id)
    assert ref.case_number == CASE
    assert ref.url == f"{discourse_site.base_url}/t/{topic.slug}/{topic.id}"
    assert topic.category_id == CATEGORIES["CITY-JCY"]
    assert CASE in topic.title  # polling reads the case number back from the title
    first = discourse_site.posts[topic.post_ids[0]]
    assert discourse_site._user(first.user_id).username == HOTLINE


async def test_create_post_twice_makes_one_topic(forum, discourse_site):
    first = await forum.create_post(new_post())
    second = await forum.create_post(new_post())
    assert first == second
    assert len(topics_for(discourse_site, CASE)) == 1


async def test_a_duplicate_answer_means_already_posted(forum, discourse_site):
    """Another bridge process filed it between our look-up and our POST: 422 -> the existing topic."""
    real_find = forum.find_post
    calls = []

    async def find_nothing_first(case_number):
        calls.append(case_number)
        if len(calls) == 1:
            discourse_site.create_topic(HOTLINE, f"住房问题咨询 [{CASE}]", "filed elsewhere", 11, CASE)
            return None
        return await real_find(case_number)

    forum.find_post = find_nothing_first
    ref = await forum.create_post(new_post())
    assert len(topics_for(discourse_site, CASE)) == 1
    assert ref.remote_id == str(topics_for(discourse_site, CASE)[0].id)
    assert ("POST", "/posts.json") in discourse_site.requests  # the POST was answered 422


async def test_timeout_after_storing_then_retry_makes_one_topic(forum, discourse_site):
    discourse_site.slow_next = 1
    with pytest.raises(ForumError) as raised:
        await forum.create_post(new_post())
    assert not isinstance(raised.value, ForumRejected)
    assert len(topics_for(discourse_site, CASE)) == 1  # Discourse did store it
    ref = await forum.create_post(new_post())
    assert len(topics_for(discourse_site, CASE)) == 1
    assert ref.remote_id == str(topics_for(discourse_site, CASE)[0].id)


async def test_forum_down_then_back_posts_exactly_once(forum, discourse_site):
    discourse_site.stop()
    with pytest.raises(ForumError):
        await forum.create_post(new_post())
    discourse_site.start()
    discourse_site.fail_next = 1
    with pytest.raises(ForumError) as raised:
        await forum.create_post(new_post())
    assert not isinstance(raised.value, ForumRejected)
    await forum.create_post(new_post())
    await forum.create_post(new_post())
    assert len(topics_for(discourse_site, CASE)) == 1


async def test_find_post(forum, discourse_site):
    assert await forum.find_post(CASE) is None
    ref = await forum.create_post(new_post())
    assert await forum.find_post(CASE) == ref
    assert await forum.find_post("96811-2026-999999") is None


async def test_unmapped_unit_and_refusals_are_rejected(forum, discourse_site):
    with pytest.raises(ForumRejected):
        await forum.create_post(new_post(unit="CITY-NOPE"))
    bad = DiscourseForum(base_url=discourse_site.base_url, api_username=HOTLINE, api_key="wrong",
                         categories=CATEGORIES)
    try:
        with pytest.raises(ForumRejected):
            await bad.create_post(new_post())
    finally:
        await bad.aclose()
    assert topics_for(discourse_site, CASE) == []


# ---------------------------------------------------------------------------- 429


async def test_429_raises_with_retry_after(forum, discourse_site):
    discourse_site.rate_limit_next = 1
    discourse_site.retry_after = 7
    with pytest.raises(ForumRateLimited) as raised:
        await forum.create_post(new_post())
    assert raised.value.retry_after == 7
    assert isinstance(raised.value, ForumError) and not isinstance(raised.value, ForumRejected)
    assert topics_for(discourse_site, CASE) == []


async def test_429_waited_out_when_short(discourse_site):
    forum = DiscourseForum(base_url=discourse_site.base_url, api_username=HOTLINE,
                           api_key=discourse_site.api_key, categories=CATEGORIES, max_wait_s=2)
    try:
        discourse_site.rate_limit_next = 1
        discourse_site.retry_after = 1
        started = time.monotonic()
        await forum.create_post(new_post())
        assert time.monotonic() - started >= 1.0
        assert len(topics_for(discourse_site, CASE)) == 1
    finally:
        await forum.aclose()


# ---------------------------------------------------------------------- follow-up


async def test_follow_up_is_idempotent(forum, discourse_site):
    ref = await forum.create_post(new_post())
    reply_id = await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    again = await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    assert again == reply_id
    topic = topics_for(discourse_site, CASE)[0]
    assert len(topic.post_ids) == 2
    reply = discourse_site.posts[int(reply_id)]
    assert discourse_site._user(reply.user_id).username == HOTLINE
    assert reply.post_number == 2
    other = await forum.post_follow_up(ref, "再次追问", idempotency_key="fu-2")
    assert other != reply_id
    assert len(topic.post_ids) == 3


async def test_follow_up_timeout_then_retry_posts_once(forum, discourse_site):
    ref = await forum.create_post(new_post())
    discourse_site.slow_next = 1
    with pytest.raises(ForumError):
        await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    assert len(topics_for(discourse_site, CASE)[0].post_ids) == 2


# ----------------------------------------------------------------------- webhooks


def webhook_app(forum, received):
    app = FastAPI()
    app.include_router(make_webhook_router(secret="test-webhook-secret", forum=forum,
                                           sink=received.extend))
    return app


@pytest.fixture
async def hook_client(forum):
    received = []
    app = webhook_app(forum, received)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as client:
        client.received = received
        yield client


URL = "/forum/discourse/webhook"


async def test_webhook_with_good_signature_hands_events_on(forum, discourse_site, hook_client):
    ref = await forum.create_post(new_post())
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理，正在核实。")
    answers = await discourse_site.deliver_webhooks(hook_client, URL)
    assert [a.status_code for a in answers] == [200, 200, 200]
    [event] = hook_client.received
    assert event.kind is ThreadEventKind.ACCEPTED
    assert event.case_number == CASE and event.unit_code == "CITY-JCY"
    assert event.actor == "jcy_zhang"


async def test_webhook_bad_or_missing_signature_is_refused_and_nothing_stored(
        forum, discourse_site, hook_client):
    ref = await forum.create_post(new_post())
    discourse_site.webhook_queue.clear()
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理，正在核实。")
    [(headers, body)] = discourse_site.webhook_queue
    bad = dict(headers, **{"X-Discourse-Event-Signature": sign("another-secret", body)})
    response = await hook_client.post(URL, content=body, headers=bad)
    assert response.status_code == 401
    tampered = body.replace("已受理".encode(), "已答复".encode())
    response = await hook_client.post(URL, content=tampered, headers=headers)
    assert response.status_code == 401
    missing = {k: v for k, v in headers.items() if k != "X-Discourse-Event-Signature"}
    response = await hook_client.post(URL, content=body, headers=missing)
    assert response.status_code == 401
    not_sha = dict(headers, **{"X-Discourse-Event-Signature": "md5=00"})
    response = await hook_client.post(URL, content=body, headers=not_sha)
    assert response.status_code == 401
    assert hook_client.received == []
    response = await hook_client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and len(hook_client.received) == 1


async def test_the_same_webhook_twice_gives_the_same_event_id(forum, discourse_site, hook_client):
    ref = await forum.create_post(new_post())
    discourse_site.webhook_queue.clear()
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "经查，该问题属国土部门职责。")
    [(headers, body)] = discourse_site.webhook_queue
    first = await hook_client.post(URL, content=body, headers=headers)
    second = await hook_client.post(URL, content=body, headers=headers)
    assert first.json() == second.json()
    assert len(hook_client.received) == 2
    assert hook_client.received[0].event_id == hook_client.received[1].event_id
    assert hook_client.received[0] == hook_client.received[1]


async def test_webhook_ping_and_unrelated_topics_give_no_events(forum, discourse_site, hook_client):
    discourse_site.create_topic("citizen_zhou", "随便聊聊天气怎么样", "天气不错", 1)
    body = b'{"ping": "OK"}'
    answers = await discourse_site.deliver_webhooks(hook_client, URL)
    assert all(a.status_code == 200 for a in answers)
    ping = await hook_client.post(URL, content=body, headers={
        "X-Discourse-Event-Type": "ping", "X-Discourse-Event": "ping",
        "X-Discourse-Event-Signature": sign("test-webhook-secret", body)})
    assert ping.status_code == 200 and ping.json() == {"events": []}
    assert hook_client.received == []


async def test_webhook_answers_503_when_the_thread_cannot_be_read(forum, discourse_site, hook_client):
    ref = await forum.create_post(new_post())
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "答复：已处理完毕。")
    discourse_site.webhook_queue = discourse_site.webhook_queue[-1:]
    discourse_site.fail_next = 1  # the answer's thread look-up fails: Discourse will redeliver
    [answer] = await discourse_site.deliver_webhooks(hook_client, URL)
    assert answer.status_code == 503
    assert hook_client.received == []


# ------------------------------------------------------------------------ polling


async def drain(forum, cursor=None):
    """Poll as bridge/forum/link.py does: until a page has no events (and, for a backlog
    read over several cycles, until the cursor stops moving)."""
    events = []
    for _ in range(50):
        page = await forum.fetch_events(cursor)
        events += page.events
        if not page.events and page.cursor == cursor:
            return events, cursor
        cursor = page.cursor
    raise AssertionError("polling never settles: a quiet cycle still reports events")


async def requests_per_cycle(site, forum, open_topics: int) -> tuple[int, int]:
    for i in range(open_topics):
        case = f"96811-2026-{i + 1:06d}"
        site.create_topic(HOTLINE, f"群众来电 [{case}]", f"案件 {case}", 11 + i % 4, case)
    _, cursor = await drain(forum)
    # One quiet cycle, and one cycle in which a unit answers one thread.
    before = len(site.requests)
    await forum.fetch_events(cursor)
    quiet = len(site.requests) - before
    site.reply("jcy_zhang", 1, "答复：已处理。")
    before = len(site.requests)
    page = await forum.fetch_events(cursor)
    first_answer = len(site.requests) - before
    assert [e.kind for e in page.events] == [ThreadEventKind.ANSWERED]
    site.reply("jcy_zhang", 1, "补充答复：已回访。")
    before = len(site.requests)
    page = await forum.fetch_events(page.cursor)
    next_answer = len(site.requests) - before
    assert [e.kind for e in page.events] == [ThreadEventKind.ANSWERED]
    return quiet, first_answer, next_answer


async def test_polling_requests_per_cycle_do_not_grow_with_open_threads():
    counts = {}
    for n in (10, 1000):
        site = make_site()
        site.start()
        forum = DiscourseForum(base_url=site.base_url, api_username=HOTLINE, api_key=site.api_key,
                               categories=CATEGORIES, page_budget=100)
        try:
            counts[n] = await requests_per_cycle(site, forum, n)
        finally:
            await forum.aclose()
            site.stop()
        assert not site.violations, site.violations
    assert counts[10] == counts[1000]
    quiet, first_answer, next_answer = counts[1000]
    assert quiet == 2  # /posts.json + /latest.json
    # + the answered thread (/t/{id}.json); the first time a case is seen in this process,
    # its topic is checked once by external_id (/t/external_id/{case}.json -> 301 -> /t/{id}.json)
    assert first_answer == 5
    assert next_answer == 3


async def test_polling_cursor_survives_a_small_page_budget(discourse_site):
    """A backlog bigger than one cycle's budget (a long outage) is read over several cycles, once."""
    forum = DiscourseForum(base_url=discourse_site.base_url, api_username=HOTLINE,
                           api_key=discourse_site.api_key, categories=CATEGORIES, page_budget=1)
    try:
        _, cursor = await drain(forum)  # the site is empty: the cursor is "0"
        assert cursor == "0"
        for i in range(60):
            case = f"96811-2026-{i + 1:06d}"
            post = discourse_site.create_topic(HOTLINE, f"群众来电 [{case}]", f"案件 {case}", 11, case)
            discourse_site.reply("jcy_zhang", post.topic_id, "答复：已处理。")
        events, cursor = await drain(forum, cursor)
        ids = [e.event_id for e in events if e.kind is ThreadEventKind.ANSWERED]
        assert len(ids) == len(set(ids)) == 60
        more, _ = await drain(forum, cursor)
        assert [e for e in more if e.kind is not ThreadEventKind.ACCEPTED] == []
    finally:
        await forum.aclose()


async def test_polling_429_is_honoured(forum, discourse_site):
    discourse_site.rate_limit_next = 1
    discourse_site.retry_after = 30
    with pytest.raises(ForumRateLimited) as raised:
        await forum.fetch_events(None)
    assert raised.value.retry_after == 30
    page = await forum.fetch_events(None)
    assert page.cursor is not None


async def test_polling_timeout_is_a_forum_error(forum, discourse_site):
    discourse_site.stop()
    with pytest.raises(ForumError):
        await forum.fetch_events(None)
    discourse_site.start()


# ---------------------------------------------------------------- a case's whole life


async def live_a_case(site, forum, after_each=None) -> str:
    """Filed at the procuratorate, accepted, forwarded to land, forwarded to housing,
    accepted, answered, follow-up, answered again (the article's chain).  ``after_each``
    (async, optional) runs after the filing and after every step: a webhook delivery, a poll."""
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)

    async def step(action, *args, **kwargs):
        result = action(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
        if after_each is not None:
            await after_each()

    await step(lambda: None)
    await step(site.edit_topic, tid, tags=["accepted"])
    await step(site.reply, "jcy_zhang", tid, "已受理。")
    await step(site.edit_topic, tid, category_id=CATEGORIES["CITY-ZRGHJ"], tags=[])
    await step(site.reply, "jcy_zhang", tid, "经查，此事不属本院职责，已转市自然资源和规划局办理。")
    await step(site.edit_topic, tid, category_id=CATEGORIES["CITY-ZJJ"])
    await step(site.reply, "zrghj_li", tid, "该小区房屋产权登记问题由市住房和城乡建设局负责，已转交。")
    await step(site.reply, "citizen_zhou", tid, "我也遇到同样的问题。")
    await step(site.edit_topic, tid, tags=["accepted"])
    await step(site.reply, "zjj_wang", tid, "已受理，正在调查。")
    await step(site.reply, "zjj_wang", tid, "答复：产权证将于下月统一办理。")
    await step(forum.post_follow_up, ref, "朱女士追问：具体哪天可以办理？", idempotency_key=f"{CASE}:fu:1")
    await step(site.reply, "zjj_wang", tid, "答复：下月 15 日起在政务中心办理。")
    return ref.remote_id


EXPECTED_LIFE = [
    (ThreadEventKind.ACCEPTED, "CITY-JCY", None),
    (ThreadEventKind.FORWARDED, "CITY-JCY", "CITY-ZRGHJ"),
    (ThreadEventKind.FORWARDED, "CITY-ZRGHJ", "CITY-ZJJ"),
    (ThreadEventKind.ACCEPTED, "CITY-ZJJ", None),
    (ThreadEventKind.ANSWERED, "CITY-ZJJ", None),
    (ThreadEventKind.FOLLOW_UP_ASKED, "CITY-ZJJ", None),
    (ThreadEventKind.FOLLOW_UP_ANSWERED, "CITY-ZJJ", None),
]


def applied_once(events):
    """What the forum service does: apply each event_id once, in the order received."""
    seen, out = set(), []
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


async def test_a_case_life_by_webhooks(forum, discourse_site, hook_client):
    # Webhooks are delivered as things happen (Discourse sends them right away).
    async def deliver():
        answers = await discourse_site.deliver_webhooks(hook_client, URL)
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]

    await live_a_case(discourse_site, forum, after_each=deliver)

    events = applied_once(hook_client.received)
    assert [(e.kind, e.unit_code, e.to_unit_code) for e in events] == EXPECTED_LIFE
    assert all(e.case_number == CASE for e in events)
    forwarded = [e for e in events if e.kind is ThreadEventKind.FORWARDED]
    assert "市自然资源和规划局" in forwarded[0].text  # the note to the poster
    assert events[-1].text == "答复：下月 15 日起在政务中心办理。"
    assert events[-2].text == "朱女士追问：具体哪天可以办理？"  # the key comment is not shown


async def test_a_case_life_by_polling_matches_the_webhooks(forum, discourse_site, hook_client):
    """Polled step by step, the same events with the same ids as the webhooks give."""
    _, cursor = await drain(forum)  # polling was running before the case was filed
    polled = []

    async def poll_and_deliver():
        nonlocal cursor
        more, cursor = await drain(forum, cursor)
        polled.extend(more)
        await discourse_site.deliver_webhooks(hook_client, URL)

    await live_a_case(discourse_site, forum, after_each=poll_and_deliver)

    by_polling = applied_once(polled)
    assert [(e.kind, e.unit_code, e.to_unit_code) for e in by_polling] == EXPECTED_LIFE
    by_webhook = applied_once(hook_client.received)
    assert [e.event_id for e in by_polling] == [e.event_id for e in by_webhook]


async def test_a_case_life_polled_once_at_the_end(forum, discourse_site):
    """Webhooks lost and one poll after the whole life: every step, in order (the tag
    acceptance of the first unit is gone by then; its notice post still says it)."""
    _, cursor = await drain(forum)  # polling was running before the case was filed
    await live_a_case(discourse_site, forum)
    events, _ = await drain(forum, cursor)
    kinds = [(e.kind, e.unit_code, e.to_unit_code) for e in applied_once(events)]
    assert kinds == EXPECTED_LIFE


# ------------------------------------------------- a note posted before the move


async def test_note_before_move_by_webhooks_is_a_forward_never_an_answer(
        forum, discourse_site, hook_client):
    site = discourse_site
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)
    site.reply("jcy_zhang", tid, "转办：此事由市自然资源和规划局负责，已转该局办理。")
    await site.deliver_webhooks(hook_client, URL)
    assert hook_client.received == []  # not an answer, not yet a forward
    site.edit_topic(tid, category_id=CATEGORIES["CITY-ZRGHJ"])
    await site.deliver_webhooks(hook_client, URL)
    [event] = hook_client.received
    assert (event.kind, event.unit_code, event.to_unit_code) == (
        ThreadEventKind.FORWARDED, "CITY-JCY", "CITY-ZRGHJ")
    assert event.text.startswith("转办：")
    note_id = next(p.id for p in site.posts.values() if p.raw.startswith("转办"))
    assert event.event_id == f"discourse:post:{note_id}"


async def test_note_before_move_by_polling(forum, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)
    _, cursor = await drain(forum)
    site.reply("jcy_zhang", tid, "转办：此事由市自然资源和规划局负责，已转该局办理。")
    events, cursor = await drain(forum, cursor)
    assert events == []
    site.edit_topic(tid, category_id=CATEGORIES["CITY-ZRGHJ"])
    events, cursor = await drain(forum, cursor)
    [event] = events
    assert (event.kind, event.unit_code, event.to_unit_code) == (
        ThreadEventKind.FORWARDED, "CITY-JCY", "CITY-ZRGHJ")
    before = len(site.requests)
    assert (await forum.fetch_events(cursor)).events == []  # looked at once
    assert len(site.requests) - before == 2


async def test_citizens_and_unmapped_posts_are_not_events(forum, discourse_site, hook_client):
    site = discourse_site
    _, cursor = await drain(forum)
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)
    site.reply("citizen_zhou", tid, "我也遇到同样的问题，请尽快答复。")
    other = site.create_topic("citizen_zhou", "小区噪音扰民问题", "晚上施工", 11)
    site.reply("jcy_zhang", other.topic_id, "答复：已转告施工方。")  # not a hotline topic
    await site.deliver_webhooks(hook_client, URL)
    events, _ = await drain(forum, cursor)
    assert hook_client.received == [] and events == []
    assert await forum.verify_threads([ref]) == []


async def test_a_topic_merely_naming_a_case_number_is_not_the_case(forum, discourse_site, hook_client):
    site = discourse_site
    _, cursor = await drain(forum)
    await forum.create_post(new_post(unit="CITY-JCY"))
    impostor = site.create_topic("citizen_zhou", f"关于 {CASE} 的看法", "我有话说", 11)
    site.reply("jcy_zhang", impostor.topic_id, "答复：请以原帖为准。")
    site.edit_topic(impostor.topic_id, tags=["accepted"])
    await site.deliver_webhooks(hook_client, URL)
    events, _ = await drain(forum, cursor)
    assert hook_client.received == [] and events == []


async def test_from_config(discourse_site):
    from bridge.config import validate
    from bridge.forum.discourse import router_from_config

    environ = {"HOTLINE_BRIDGE_SESSION_SECRET": "s",
               "HOTLINE_BRIDGE_DISCOURSE_API_KEY": discourse_site.api_key,
               "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET": "test-webhook-secret"}
    config = validate({"forum": {"backend": "discourse", "discourse": {
                           "base_url": discourse_site.base_url, "categories": CATEGORIES}}},
                      environ={**environ, "HOTLINE_BRIDGE_AMI_SECRET": "a"})
    forum = DiscourseForum.from_config(config)
    try:
        ref = await forum.create_post(new_post())
        assert await forum.find_post(CASE) == ref
        received = []
        app = FastAPI()
        app.include_router(router_from_config(config, forum=forum, sink=received.extend))
        discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理。")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as client:
            await discourse_site.deliver_webhooks(client, URL)
        assert [e.kind for e in received] == [ThreadEventKind.ACCEPTED]
    finally:
        await forum.aclose()


async def test_follow_up_and_answer_in_a_long_thread(forum, discourse_site):
    """More posts than the topic view's first chunk (20): still one follow-up per key, and
    the answer after it is a follow-up answer."""
    ref = await forum.create_post(new_post())
    tid = int(ref.remote_id)
    _, cursor = await drain(forum)
    for i in range(25):
        discourse_site.reply("citizen_zhou", tid, f"顶帖 {i}")
    await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    for i in range(3):
        discourse_site.reply("citizen_zhou", tid, f"再顶 {i}")
    await forum.post_follow_up(ref, "朱女士追问：何时处理？", idempotency_key="fu-1")
    topic = discourse_site.topics[tid]
    assert len(topic.post_ids) == 1 + 25 + 1 + 3
    discourse_site.reply("jcy_zhang", tid, "答复：本周内处理。")
    events, _ = await drain(forum, cursor)
    assert [e.kind for e in events] == [ThreadEventKind.FOLLOW_UP_ASKED,
                                        ThreadEventKind.FOLLOW_UP_ANSWERED]


def test_retry_after_and_cursor_parsing():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from bridge.forum.discourse import Cursor
    from bridge.forum.discourse.client import _retry_after

    assert _retry_after("12") == 12
    assert _retry_after(None) == 60 and _retry_after("soon") == 60
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=90), usegmt=True)
    assert 80 <= _retry_after(later) <= 90
    assert str(Cursor.parse(None)) == "0"
    assert str(Cursor.parse("17")) == "17"
    assert str(Cursor.parse("5:40:90")) == "5:40:90"
    with pytest.raises(ValueError):
        Cursor.parse("abc")


async def test_a_tag_acceptance_is_polled_once(forum, discourse_site):
    ref = await forum.create_post(new_post())
    _, cursor = await drain(forum)
    discourse_site.edit_topic(int(ref.remote_id), tags=["accepted"])
    page = await forum.fetch_events(cursor)
    assert [e.kind for e in page.events] == [ThreadEventKind.ACCEPTED]
    assert (await forum.fetch_events(page.cursor)).events == []
