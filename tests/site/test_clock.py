"""The site's clock: now, today and this year in the site's zone, whatever the host's zone."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bridge.config import validate
from bridge.site.clock import SiteClock
from tests.site.host_clock import host_clock

BEIJING = ZoneInfo("Asia/Shanghai")
# 00:30 on 1 January 2027 in Beijing; still 2026 in UTC.
NEW_YEARS_NIGHT = datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc)


def test_the_site_clock_is_in_the_sites_zone():
    clock = SiteClock(BEIJING, lambda: NEW_YEARS_NIGHT)
    assert clock.now() == NEW_YEARS_NIGHT and clock.now().tzinfo is BEIJING
    assert clock.today() == date(2027, 1, 1)
    assert clock.this_year() == 2027
    assert clock() == clock.now()


def test_the_site_clock_of_a_config_follows_site_timezone():
    config = validate({"site": {"timezone": "Asia/Shanghai"}}, environ={"HOTLINE_BRIDGE_AMI_SECRET": "x",
                                                                       "HOTLINE_BRIDGE_SESSION_SECRET": "y"})
    assert SiteClock.of(config, lambda: NEW_YEARS_NIGHT).this_year() == 2027


def test_the_system_clock_is_the_sites_on_a_utc_host():
    with host_clock(NEW_YEARS_NIGHT, "UTC"):
        assert SiteClock(BEIJING).this_year() == 2027
        assert SiteClock(BEIJING).today() == date(2027, 1, 1)


def test_a_naive_source_is_refused():
    with pytest.raises(ValueError, match="aware"):
        SiteClock(BEIJING, lambda: datetime(2027, 1, 1)).now()
