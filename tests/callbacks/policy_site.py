"""The site the callback policy tests run on: Beijing time, the shipped [callbacks] settings."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.config import CallbacksConfig
from bridge.site.calendar import ChinaWorkingCalendar
from callbacks.retry import RetryPolicy
from callbacks.windows import CallingWindows

ZONE = ZoneInfo("Asia/Shanghai")
CAL = ChinaWorkingCalendar()
SHIPPED = CallbacksConfig()
WINDOWS = CallingWindows.of(SHIPPED, ZONE)
RETRY = RetryPolicy.of(SHIPPED)


class Before2026Arrangement(ChinaWorkingCalendar):
    """The calendar as it was before the State Council announced 2026 (no make-up days yet)."""

    def covers(self, year: int) -> bool:
        return year < 2026 and super().covers(year)


def at(text: str) -> datetime:
    """A local (Beijing) moment, e.g. at("2026-02-14 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def windows_of(**section) -> CallingWindows:
    """The windows of a [callbacks] section (validated as the file's would be)."""
    return CallingWindows.of(CallbacksConfig.model_validate(section), ZONE)
