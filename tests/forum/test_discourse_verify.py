"""The Discourse backend's bounded verification (verify_threads), the fresh start at the newest
post, the case -> topic map handed in (remember_topics) and the unit -> group config, against the
contract-checked fake Discourse."""
from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from bridge.forum.adapter import PostRef, ThreadEventKind
from bridge.forum.discourse import DiscourseForum, make_webhook_router
from tests.forum.discourse_server import CATEGORIES, HOTLINE
from tests.forum.test_discourse import (
    CASE,
    EXPECTED_LIFE,
    URL,
    applied_once,
    drain,
    live_a_case,
    new_post,
)


def client_for(site, **kwargs) -> DiscourseForum:
    return DiscourseForum(base_url=site.base_url, api_username=HOTLINE, api_key=site.api_key,
                          categories=CATEGORIES, timeout_s=2.0, **kwargs)


@pytest.fixture
async def forum(discourse_site):
    client = client_for(discourse_site)
    yield client
    await client.aclose()


@pytest.fixture
async def restarted(discourse_site):
    """A second client on the same site: the daemon after a restart (nothing in memory)."""
    client = client_for(discourse_site)
    yield client
    await client.aclose()


def crowd(site, n: int = 31) -> None:
    """Other threads get activity: the case's topic drops off /latest.json's first page (30)."""
    for i in range(n):
        case = f"96811-2026-{900 + i:06d}"
        site.create_topic(HOTLINE, f"群众来电 [{case}]", f"案件 {case}", 12, case)


def spent(site, before: int) -> list[tuple[str, str]]:
    return site.requests[before:]


# ------------------------------------------------------------------- the fresh start


async def test_a_fresh_start_polls_from_the_newest_post_without_walking_history(forum, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post())
    for i in range(120):  # an old history: three /posts.json pages and more
        site.reply("citizen_zhou", int(ref.remote_id), f"顶帖 {i}")
    site.reply("jcy_zhang", int(ref.remote_id), "答复：已处理完毕。")
    top = max(site.posts)
    before = len(site.requests)
    page = await forum.fetch_events(None)
    assert spent(site, before) == [("GET", "/posts.json")]  # one page, not the history
    assert page.events == [] and page.cursor == str(top)
    site.reply("jcy_zhang", int(ref.remote_id), "补充答复：已回访。")
    page = await forum.fetch_events(page.cursor)
    assert [e.text for e in page.events] == ["补充答复：已回访。"]  # new posts are read at once


async def test_a_fresh_start_on_an_empty_site(forum, discourse_site):
    page = await forum.fetch_events(None)
    assert page.cursor == "0" and page.events == []
    ref = await forum.create_post(new_post())
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理。")
    events, _ = await drain(forum, page.cursor)
    assert [e.kind for e in events] == [ThreadEventKind.ACCEPTED]


# ------------------------------------------------------------------- verification


async def test_verification_reads_a_whole_life_with_the_ids_polling_gives(forum, restarted, discourse_site):
    """After a fresh start polling no longer reads the history: verifying the case's thread
    gives every step, in order, with the same event ids as polling."""
    _, cursor = await drain(forum)
    tid = await live_a_case(discourse_site, forum)
    polled, _ = await drain(forum, cursor)
    ref = PostRef(case_number=CASE, remote_id=tid, url="")
    verified = await restarted.verify_threads([ref])
    assert [(e.kind, e.unit_code, e.to_unit_code) for e in applied_once(verified)] == EXPECTED_LIFE
    assert [e.event_id for e in applied_once(verified)] == [e.event_id for e in applied_once(polled)]
    assert [e.text for e in applied_once(verified)] == [e.text for e in applied_once(polled)]
    assert all(e.case_number == CASE for e in verified)


async def test_verification_finds_a_tag_acceptance_polling_cannot_see(
        forum, restarted, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post())
    _, cursor = await drain(forum)
    crowd(site)
    _, cursor = await drain(forum, cursor)
    site.webhook_queue.clear()
    site.edit_topic(int(ref.remote_id), tags=["accepted"])  # no bump, and the webhook is lost
    events, cursor = await drain(forum, cursor)
    assert events == []  # off /latest.json's first page: polling misses it
    [event] = await restarted.verify_threads([ref])
    assert (event.kind, event.unit_code, event.case_number) == (ThreadEventKind.ACCEPTED, "CITY-JCY", CASE)
    assert event.event_id == f"discourse:topic:{ref.remote_id}:accepted:{CATEGORIES['CITY-JCY']}"
    # The same change seen by its webhook has the same id.
    received = []
    app = FastAPI()
    app.include_router(make_webhook_router(secret="test-webhook-secret", forum=forum, sink=received.extend))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as hook:
        await site.deliver_webhooks(hook, URL)
    assert [e.event_id for e in received] == [event.event_id]


async def test_verification_again_reports_the_same_events_and_reads_the_thread_once(
        forum, restarted, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post())
    tid = int(ref.remote_id)
    site.reply("jcy_zhang", tid, "已受理，正在核实。")
    site.reply("jcy_zhang", tid, "答复：已处理完毕。")
    before = len(site.requests)
    first = await restarted.verify_threads([ref])
    # The topic view, then the raw of the two unit replies (the view has only their HTML).
    assert spent(site, before) == [("GET", f"/t/{tid}.json"), *[("GET", f"/posts/{p}.json")
                                                                for p in site.topics[tid].post_ids[1:]]]
    assert [e.kind for e in first] == [ThreadEventKind.ACCEPTED, ThreadEventKind.ANSWERED]
    before = len(site.requests)
    assert await restarted.verify_threads([ref]) == first
    assert spent(site, before) == [("GET", f"/t/{tid}.json")]  # raws are kept


async def test_a_tag_behind_later_steps_is_not_reported(restarted, forum, discourse_site):
    """A unit that tagged and then answered: its acceptance is behind the answer, and reporting
    it after the answer would set the case back to "accepted"."""
    site = discourse_site
    ref = await forum.create_post(new_post())
    site.edit_topic(int(ref.remote_id), tags=["accepted"])
    site.reply("jcy_zhang", int(ref.remote_id), "答复：已处理完毕。")
    assert [e.kind for e in await restarted.verify_threads([ref])] == [ThreadEventKind.ANSWERED]


async def test_a_tag_at_the_unit_a_thread_was_forwarded_to_comes_after_the_forward(
        restarted, forum, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)
    site.edit_topic(tid, category_id=CATEGORIES["CITY-ZRGHJ"])
    site.reply("jcy_zhang", tid, "经查，此事不属本院职责，已转市自然资源和规划局办理。")
    site.edit_topic(tid, tags=["accepted"])
    events = await restarted.verify_threads([ref])
    assert [(e.kind, e.unit_code, e.to_unit_code) for e in events] == [
        (ThreadEventKind.FORWARDED, "CITY-JCY", "CITY-ZRGHJ"), (ThreadEventKind.ACCEPTED, "CITY-ZRGHJ", None)]


async def test_a_note_before_the_move_is_a_forward_when_verified(restarted, forum, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post(unit="CITY-JCY"))
    tid = int(ref.remote_id)
    site.reply("jcy_zhang", tid, "转办：此事由市自然资源和规划局负责，已转该局办理。")
    assert await restarted.verify_threads([ref]) == []  # not moved yet: neither answer nor forward
    site.edit_topic(tid, category_id=CATEGORIES["CITY-ZRGHJ"])
    [event] = await restarted.verify_threads([ref])
    assert (event.kind, event.unit_code, event.to_unit_code) == (
        ThreadEventKind.FORWARDED, "CITY-JCY", "CITY-ZRGHJ")


async def test_a_gone_topic_is_skipped_and_the_others_are_read(restarted, forum, discourse_site):
    ref = await forum.create_post(new_post())
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理。")
    gone = PostRef(case_number="96811-2026-000999", remote_id="999", url="")
    events = await restarted.verify_threads([gone, ref])
    assert [e.case_number for e in events] == [CASE]


async def test_a_topic_whose_title_is_not_the_case_is_ignored(restarted, forum, discourse_site):
    ref = await forum.create_post(new_post())
    discourse_site.reply("jcy_zhang", int(ref.remote_id), "已受理。")
    wrong = PostRef(case_number="96811-2026-000777", remote_id=ref.remote_id, url="")
    assert await restarted.verify_threads([wrong]) == []


# ------------------------------------------------------------ the case -> topic map


async def webhook_requests(site, forum) -> tuple[list, int, int]:
    """Deliver the queued webhook: (events, forum.requests_made, HTTP requests Discourse saw)."""
    received = []
    app = FastAPI()
    app.include_router(make_webhook_router(secret="test-webhook-secret", forum=forum, sink=received.extend))
    before, seen = forum.requests_made, len(site.requests)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as hook:
        answers = await site.deliver_webhooks(hook, URL)
    assert [a.status_code for a in answers] == [200]
    return received, forum.requests_made - before, len(site.requests) - seen


async def test_a_known_topic_map_saves_the_external_id_look_up(forum, discourse_site):
    site = discourse_site
    ref = await forum.create_post(new_post())
    site.webhook_queue.clear()
    site.reply("jcy_zhang", int(ref.remote_id), "答复：已处理完毕。")
    queued = list(site.webhook_queue)
    fresh = client_for(site)
    try:
        received, without_map, http_without_map = await webhook_requests(site, fresh)
    finally:
        await fresh.aclose()
    assert [e.kind for e in received] == [ThreadEventKind.ANSWERED]
    # The thread, and /t/external_id/{case}.json (+ its redirect to /t/{id}.json).
    assert (without_map, http_without_map) == (2, 3)

    site.webhook_queue[:] = queued
    fresh = client_for(site)
    try:
        fresh.remember_topics({CASE: ref.remote_id, "96811-2026-000002": "77"})
        received, with_map, http_with_map = await webhook_requests(site, fresh)
    finally:
        await fresh.aclose()
    assert [e.kind for e in received] == [ThreadEventKind.ANSWERED]
    assert (with_map, http_with_map) == (1, 1)  # the thread only


async def test_the_map_still_refuses_an_impostor_without_a_request(discourse_site):
    site = discourse_site
    forum = client_for(site)
    try:
        ref = await forum.create_post(new_post())
        impostor = site.create_topic("citizen_zhou", f"关于 {CASE} 的看法", "我有话说", 11)
        site.webhook_queue.clear()
        site.reply("jcy_zhang", impostor.topic_id, "答复：请以原帖为准。")
        fresh = client_for(site)
        fresh.remember_topics({CASE: ref.remote_id})
        try:
            received, requests, _ = await webhook_requests(site, fresh)
        finally:
            await fresh.aclose()
        assert received == []
        assert requests == 1  # the impostor's thread (answer or follow-up answer?), no look-up
    finally:
        await forum.aclose()


# ----------------------------------------------------------------- unit -> group


async def test_groups_from_config_name_the_units_spokespeople(discourse_site):
    from bridge.config import validate

    site = discourse_site
    site.add_user("jcy_liu", group="jianchayuan")
    environ = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a",
               "HOTLINE_BRIDGE_DISCOURSE_API_KEY": site.api_key,
               "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET": "test-webhook-secret"}
    config = validate({"forum": {"backend": "discourse", "discourse": {
        "base_url": site.base_url, "categories": CATEGORIES, "groups": {"CITY-JCY": "jianchayuan"}}}},
        environ=environ)
    forum = DiscourseForum.from_config(config)
    try:
        ref = await forum.create_post(new_post())
        _, cursor = await drain(forum)
        site.reply("jcy_zhang", int(ref.remote_id), "已受理。")  # group city-jcy: no longer the unit's
        site.reply("jcy_liu", int(ref.remote_id), "已受理，正在核实。")
        events, _ = await drain(forum, cursor)
        assert [(e.kind, e.unit_code, e.actor) for e in events] == [
            (ThreadEventKind.ACCEPTED, "CITY-JCY", "jcy_liu")]
        assert forum.mapping.unit_groups["CITY-ZJJ"] == "city-zjj"  # the default for the others
    finally:
        await forum.aclose()
