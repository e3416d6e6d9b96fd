"""Office hours: the generated include (pure) and its evaluation by the real Asterisk."""
from __future__ import annotations

import asyncio
import re
from datetime import date, datetime

import pytest

from bridge.config import validate
from bridge.pbx.dialplan import render_office_hours

ENV = {"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"}


def _config(**office_hours):
    return validate({"office_hours": office_hours} if office_hours else {}, environ=ENV)


def _calendar(text: str) -> dict[str, str]:
    return dict(re.findall(r"^exten => (\d{8}),1,Return\((\w+)\)", text, re.M))


def test_china_calendar_rest_days_and_make_up_working_days():
    text = render_office_hours(_config(), today=date(2026, 11, 26))
    cal = _calendar(text)
    assert cal["20261001"] == "restday"          # National Day
    assert cal["20260217"] == "restday"          # Spring Festival
    assert cal["20261010"] == "workday"          # Saturday, make-up working day
    assert cal["20260214"] == "workday"
    assert "20261126" not in cal                 # an ordinary Thursday follows the weekday rule
    assert any(k.startswith("2027") for k in cal)  # next year's statutory holidays
    assert "WARNING: no make-up working days known for 2027" in text
    assert "WARNING: no make-up working days known for 2026" not in text


def test_periods_become_minute_comparisons_in_the_site_time_zone():
    text = render_office_hours(_config(periods=["08:30-12:00", "14:00-17:30"]), today=date(2026, 11, 26))
    assert "$[${hhmm} >= 10830 & ${hhmm} < 11200]?open" in text
    assert "$[${hhmm} >= 11400 & ${hhmm} < 11730]?open" in text
    assert "STRFTIME(${now},Asia/Shanghai,%H%M)" in text
    assert text.count("[hotline-hours]") == 1 and text.count("[hotline-calendar]") == 1


def test_site_days_override_the_calendar():
    text = render_office_hours(_config(), today=date(2026, 11, 26),
                               extra_working_days=[date(2026, 10, 1)], extra_rest_days=[date(2026, 11, 27)])
    cal = _calendar(text)
    assert cal["20261001"] == "workday"
    assert cal["20261127"] == "restday"


@pytest.mark.asterisk
@pytest.mark.timeout(60)
async def test_a_rest_day_is_closed_even_inside_the_periods(asterisk, sipp_cleanup):
    today = datetime.now(asterisk.config.site.zone).date()
    asterisk.set_office_hours(["00:00-23:59"], extra_rest_days=[today])
    try:
        async with asterisk.ami_events() as ami:
            call = asterisk.place_calls(1, caller_number="13800008888", caller_name="周先生", hold_ms=60000)
            first = await ami.wait_for("Newchannel", CallerIDNum="13800008888", timeout=10)
            linkedid = first["Linkedid"]
            await ami.wait_for("VarSet", Variable="HOTLINE_MESSAGE", Linkedid=linkedid, timeout=10)
            asterisk.hangup(first["Channel"])
            assert await asyncio.to_thread(call.wait, 30) == 0, call.report()
            assert ami.varset("HOTLINE_DAYTYPE", Linkedid=linkedid)[-1] == "restday"
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid) == ["after_hours_message"]
    finally:
        asterisk.open_now()
