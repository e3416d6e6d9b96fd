"""An owed step's countdown on the units pages (bridge/transparency/countdown.py): seconds left in the
deadline's own measure, stopped outside office hours for an acceptance made in them, negative once
overdue; the text the page's script writes from the same seconds."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bridge.forum.service import Deadlines
from bridge.i18n import translations
from bridge.transparency.countdown import clock_text, owed_view
from bridge.transparency.owed import OwedCase
from tests.transparency.data import SHANGHAI

POLICY = Deadlines(office_periods=("08:30-12:00", "14:00-17:30"), zone=SHANGHAI)
ZH = translations("zh_CN")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(timezone.utc)


def posted(at: datetime, due: datetime, state: str = "posted") -> OwedCase:
    return OwedCase("96811-2026-000001", "路口垃圾", "CITY-LJQ", "绿色产业集聚区", state, due, at)


def test_an_acceptance_made_in_office_hours_stops_counting_at_night():
    # Thursday 3 Dec 2026, 16:30: one office hour that day, the second on Friday 08:30-09:30.
    case = posted(local(2026, 12, 3, 16, 30), local(2026, 12, 4, 9, 30))
    evening = owed_view(case, local(2026, 12, 3, 20, 0), policy=POLICY, zone=SHANGHAI, tr=ZH)
    assert (evening["left_s"], evening["counting"], evening["measure"]) == (3600, False, "office")
    assert evening["countdown"] == "剩余 1:00:00（办公时间）" and evening["paused"]
    morning = owed_view(case, local(2026, 12, 4, 9, 0), policy=POLICY, zone=SHANGHAI, tr=ZH)
    assert (morning["left_s"], morning["counting"]) == (1800, True)


def test_overdue_counts_clock_time_since_the_deadline():
    case = posted(local(2026, 12, 3, 16, 30), local(2026, 12, 4, 9, 30))
    late = owed_view(case, local(2026, 12, 6, 10, 45, 5), policy=POLICY, zone=SHANGHAI, tr=ZH)
    assert (late["left_s"], late["counting"], late["overdue"]) == (-(2 * 86400 + 3600 + 15 * 60 + 5), True, True)
    assert late["countdown"] == "已超期 2 天 1:15:05"
    assert late["overdue_format"] == "已超期 %(time)s" and late["days_format"] == "%(days)d 天 %(clock)s"


def test_an_answer_owed_counts_clock_hours_and_an_unknown_deadline_says_so():
    accepted = posted(local(2026, 12, 3, 9, 0), local(2026, 12, 6, 9, 0), state="accepted")
    view = owed_view(accepted, local(2026, 12, 3, 21, 0), policy=POLICY, zone=SHANGHAI, tr=ZH)
    assert (view["left_s"], view["counting"], view["step"]) == (60 * 3600, True, "answer")
    assert view["countdown"] == "剩余 2 天 12:00:00（自然时间）"
    unknown = owed_view(posted(local(2026, 12, 3, 9, 0), None), local(2026, 12, 3, 10, 0), policy=POLICY,
                        zone=SHANGHAI, tr=ZH)
    assert unknown["left_s"] is None


def test_the_clock_text():
    assert clock_text(59, ZH) == "0:00:59" and clock_text(-3661, ZH) == "1:01:01"
    assert clock_text(timedelta(days=3, seconds=5).total_seconds(), ZH) == "3 天 0:00:05"
