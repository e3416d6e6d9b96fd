"""``[forum] answer_days``: the 3 days to answer count calendar days (the default) or working days,
wherever the answer deadline is computed: the board's own write (the builtin board's API), the
forum link's polling (the path Discourse's webhooks and polling take too) and the overdue watch."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.config import ConfigError, validate
from bridge.db.models import Case
from bridge.forum import service
from bridge.forum.builtin import api as board_api
from bridge.forum.builtin import board
from bridge.forum.link import ForumLink
from bridge.health import Health
from tests.forum.test_builtin_support import PUBLIC_URL, SECRETS, auth, file_case, read_case, run

ZONE = ZoneInfo("Asia/Shanghai")
ACCEPTED = datetime(2026, 11, 27, 10, 0, tzinfo=ZONE)      # a Friday
FOLLOW_UP = datetime(2026, 11, 28, 11, 0, tzinfo=ZONE)     # the Saturday after
EXPECTED = {  # answer_days -> (due after the acceptance, due after the follow-up)
    "calendar": (datetime(2026, 11, 30, 10, 0, tzinfo=ZONE), datetime(2026, 12, 1, 11, 0, tzinfo=ZONE)),
    "working": (datetime(2026, 12, 2, 10, 0, tzinfo=ZONE), datetime(2026, 12, 3, 0, 0, tzinfo=ZONE)),
}


@pytest.fixture(params=["calendar", "working"])
def answer_days(request) -> str:
    return request.param


@pytest.fixture
def site_config(answer_days):
    """The forum tests' site (tests/forum/conftest.py), with the answer counted in ``answer_days``."""
    return validate({"web": {"public_url": PUBLIC_URL, "secure_cookies": False},
                     "forum": {"answer_days": answer_days}}, environ=SECRETS)


def test_the_default_is_calendar_days_and_a_wrong_value_is_named():
    assert validate({}, environ=SECRETS).forum.answer_days == "calendar"
    assert validate({"forum": {"answer_days": "working"}}, environ=SECRETS).forum.answer_days == "working"
    with pytest.raises(ConfigError) as problem:
        validate({"forum": {"answer_days": "workdays"}}, environ=SECRETS)
    assert "forum.answer_days" in str(problem.value) and "'calendar' or 'working'" in str(problem.value)
    with pytest.raises(ValueError, match="answer_days"):
        service.Deadlines(office_periods=["08:30-12:00"], zone=ZONE, answer_days="workdays")


def test_the_board_and_the_forum_link_count_the_answer_as_the_site_says(
        client, app, db, people, worker, forum, live, answer_days, monkeypatch):
    case = file_case(client, people)
    number = case["number"]
    assert run(worker.run_once()).sent == 1
    post_id = int(read_case(client, people, number)["forum_url"].rsplit("/", 1)[1])
    assert worker.deadlines.answer_days == answer_days
    # the board's own write: the spokesperson accepts on a Friday at 10:00
    monkeypatch.setattr(board_api, "_now", lambda: ACCEPTED)
    response = client.post(f"/api/v1/board/posts/{post_id}/accept", headers=auth(people["jcy"]))
    assert response.status_code == 200, response.text
    case = read_case(client, people, number)
    assert case["state"] == "accepted"
    assert datetime.fromisoformat(case["deadline_at"]) == EXPECTED[answer_days][0]
    # a follow-up on the Saturday, read by the forum link's polling
    with db.session() as session:
        board.follow_up(session, number, "朱女士追问：夜间是否也会清理？", "follow-up-1", FOLLOW_UP)
    link = ForumLink(app.state.config, db, Health(), live, forum=forum)
    assert link.deadlines.answer_days == answer_days
    run(link.cycle())
    with db.session(readonly=True) as session:
        stored = session.scalar(select(Case).where(Case.number == number))
        assert stored.state.value == "reopened"
        assert stored.deadline_at == EXPECTED[answer_days][1]
