"""The forum link as the daemon runs it: started, woken by a filed case, posts it, reports health."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from bridge.cases.service import file_case as file_case_in_session
from bridge.forum.adapter import ForumError, ForumRateLimited
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.link import ForumLink
from bridge.health import Health
from bridge.live import LiveEvent, LiveEvents
from tests.forum.test_builtin_support import case_form


async def test_link_posts_a_filed_case_at_once_and_is_up(db, site_config, people):
    health = Health()
    live = LiveEvents()
    link = ForumLink(site_config, db, health, live, interval_s=30)
    await link.start()
    try:
        for _ in range(100):
            if health.get("forum") == "up":
                break
            await asyncio.sleep(0.05)
        assert health.get("forum") == "up"

        def work():
            from datetime import datetime, timezone

            with db.session() as session:
                return file_case_in_session(session, case_form(), user=None, now=datetime.now(timezone.utc),
                                            zone=site_config.site.zone).number

        number = await db.run(work)
        async with live.subscribe() as queue:
            live.publish(LiveEvent("case", "filed", {"number": number, "state": "queued"}))
            event = await asyncio.wait_for(queue.get(), 5)
            while event.kind != "state_changed":
                event = await asyncio.wait_for(queue.get(), 5)
        assert event.data["number"] == number and event.data["state"] == "posted"
        assert event.data["forum_url"].startswith("https://hotline.example.org/board/threads/")
        snapshot = health.snapshot()["components"]["forum"]
        assert snapshot["backend"] == "builtin" and snapshot["outbox_failed"] == 0
    finally:
        await link.stop()
    assert health.get("forum").startswith("down")


class _RateLimitedForum(BuiltinForum):
    """The builtin board asking the bridge to wait, as a rate-limiting backend would."""

    async def create_post(self, post):
        raise ForumRateLimited("slow down", retry_after=120)


class _LooksRateLimited(ForumError):
    retry_after = 120.0  # not the one rate-limit type: a plain failure


async def test_the_one_rate_limit_type_pauses_the_link_whatever_the_backend(db, site_config, people):
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    forum = _RateLimitedForum(db, site_config.web.public_url)
    link = ForumLink(site_config, db, Health(), LiveEvents(), forum=forum, interval_s=30, clock=lambda: now)
    with db.session() as session:
        file_case_in_session(session, case_form(), user=None, now=now, zone=site_config.site.zone)
    counts = await link.cycle()
    assert counts["failed"] == 1
    assert link.rate_limited_until == now + timedelta(seconds=120) and link.is_rate_limited()

    link.rate_limited_until = None
    link.note_rate_limit(_LooksRateLimited("refused"))
    assert not link.is_rate_limited()
