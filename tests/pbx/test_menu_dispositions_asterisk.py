"""Menu hang-ups against the real Asterisk: a caller who hangs up in the greeting or the menu is
logged ``hung_up_in_menu``; a call that really fails there keeps ``failed`` with its cause.

Runs the daemon's PBX link (the ``bridge`` fixture of test_calllog_asterisk) on the session's
test bed, whose prompts are the tests' short ones (greeting + menu about 2 s, then 2 s for a key).
"""
from __future__ import annotations

import pytest

from bridge.db.models import CallDisposition
from tests.pbx.test_calllog_asterisk import bridge, finished, new_caller  # noqa: F401 - the fixture

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(120)]


async def test_caller_hanging_up_in_the_menu_is_logged_hung_up_in_menu(asterisk, bridge):  # noqa: F811
    caller = new_caller()
    async with asterisk.ami_events() as ami:
        await finished(asterisk.place_calls(1, caller_number=caller, caller_name="孙阿姨", hold_ms=1200))
        first = await ami.wait_for("Newchannel", CallerIDNum=caller, timeout=10)
        await ami.wait_for("Hangup", Uniqueid=first["Uniqueid"], timeout=10)
        assert ami.varset("HOTLINE_DISPOSITION", Linkedid=first["Linkedid"]) == ["menu"]
        assert not ami.find("QueueCallerJoin", Linkedid=first["Linkedid"])
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.HUNG_UP_IN_MENU
    assert call.linkedid == first["Linkedid"] and call.hangup_cause == 0


async def test_call_dropped_by_the_network_in_the_menu_stays_failed(asterisk, bridge):  # noqa: F811
    caller = new_caller()
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="周先生", hold_ms=60000)
        first = await ami.wait_for("Newchannel", CallerIDNum=caller, timeout=10)
        await ami.wait_for("VarSet", Variable="HOTLINE_DISPOSITION", Value="menu", Linkedid=first["Linkedid"],
                           timeout=10)
        # Q.850 38, network out of order: what Asterisk reports when the line drops.
        await ami.action({"Action": "Hangup", "Channel": first["Channel"], "Cause": "38"})
        await finished(run)
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.FAILED
    assert (call.hangup_cause, call.hangup_cause_text) == (38, "Network out of order")
