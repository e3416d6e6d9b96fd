"""A real SIPp call through the Asterisk test bed rings the operator's extension and the
desk, open in Chromium, pops it: the whole chain (SIP -> Asterisk dialplan and queue ->
AMI -> PbxService -> live events -> SSE -> page)."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bridge.db.models import Call
from bridge.health import Health
from bridge.pbx.service import PbxService
from tests.desk.test_browser import browser, db, page, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.asterisk, pytest.mark.timeout(180)]

CALLER = "13905701234"


@pytest.fixture
def pbx(asterisk, live, db, sipp_cleanup):
    """The daemon's PBX link running in the desk server's loop, publishing into its live events."""
    service = PbxService(asterisk.config, db, Health(), live.app.state.live)
    asyncio.run_coroutine_threadsafe(service.start(), live.loop).result(20)
    assert asyncio.run_coroutine_threadsafe(service.ami.wait_up(20), live.loop).result(25)
    yield service
    asyncio.run_coroutine_threadsafe(service.stop(), live.loop).result(20)


def test_a_real_call_pops_at_the_operators_desk(asterisk, pbx, page, live, db):
    sign_in(page, live)  # the operator account works at extension 8001
    page.wait_for_url(f"{live.url}/desk/")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    with asterisk.desk_phone("8001"):
        run = asterisk.place_calls(1, caller_number=CALLER, caller_name="朱女士", digits="1", hold_ms=6000)
        pop = page.locator("#call-pops .call-pop").first
        pop.wait_for(timeout=30_000)
        page.wait_for_selector('#call-pops .call-pop[data-kind="connected"]', timeout=30_000)
        assert pop.locator(".pop-number").inner_text().replace(" ", "") == CALLER
        assert "朱女士" in pop.inner_text()
        page.screenshot(path="/tmp/desk-real-call-pop.png", full_page=True)
        assert run.wait(60) == 0, run.report()
    linkedid = pop.get_attribute("data-linkedid")
    page.wait_for_selector(f'#call-pops .call-pop.ended[data-linkedid="{linkedid}"]', timeout=20_000)
    with db.session(readonly=True) as session:
        call = session.scalar(select(Call).where(Call.linkedid == linkedid))
        assert call is not None and call.caller_number == CALLER and call.extension == "8001"
    pop.locator(".pop-file").click()
    page.wait_for_url(f"**/desk/cases/new?call={linkedid}*")
    assert page.input_value('input[name="call_linkedid"]') == linkedid
