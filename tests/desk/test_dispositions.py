"""The desk tells a caller who hung up in the menu apart from a call that failed (the call pop's history)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bridge.db.models import Call, CallDisposition
from bridge.live import LiveEvent
from tests.desk.test_sse import read_events, signed_in

pytestmark = pytest.mark.timeout(60)

CALLER = "13955556666"
EARLIER = {"71.1": CallDisposition.HUNG_UP_IN_MENU, "72.1": CallDisposition.FAILED,
           "73.1": CallDisposition.ABANDONED}


def _pop_history(live, db, accept_language: str) -> dict[str, str]:
    """linkedid -> the text of its line in the pop's "earlier calls"."""
    with db.session() as session:
        for n, (linkedid, disposition) in enumerate(EARLIER.items()):
            if session.query(Call).filter_by(linkedid=linkedid).one_or_none() is None:
                session.add(Call(linkedid=linkedid, caller_number=CALLER, disposition=disposition,
                                 arrived_at=datetime(2026, 11, 20, 2, n, tzinfo=timezone.utc),
                                 hangup_cause=38 if disposition is CallDisposition.FAILED else 0,
                                 hangup_cause_text="Network out of order" if disposition is CallDisposition.FAILED
                                 else "Unknown"))
    client = signed_in(live)
    client.headers["Accept-Language"] = accept_language
    client.get(f"/desk/?lang={accept_language}")
    with client.stream("GET", "/desk/events") as response:
        lines = response.iter_lines()
        read_events(lines, 1)
        live.publish(LiveEvent("call", "ringing", {"linkedid": "74.1", "caller_number": CALLER, "caller_name": "",
                                                   "arrived_at": None, "extension": "8001"}))
        ((_, pop),) = read_events(lines, 1)
    client.close()
    html = pop["html"]
    out = {}
    for linkedid in EARLIER:
        start = html.index(f'<li data-linkedid="{linkedid}"')
        out[linkedid] = html[start:html.index("</li>", start)]
    return out


def test_hung_up_in_the_menu_and_failed_read_differently_in_chinese(live, db):
    lines = _pop_history(live, db, "zh-CN")
    assert "菜单中挂断" in lines["71.1"] and 'class="disposition hung_up_in_menu"' in lines["71.1"]
    assert "失败" in lines["72.1"] and "菜单中挂断" not in lines["72.1"]
    assert 'class="disposition failed"' in lines["72.1"]
    # A real failure says why (Asterisk's hangup cause); a caller's own hang-up has no cause shown.
    assert "（原因 38）" in lines["72.1"] and 'title="Network out of order"' in lines["72.1"]
    assert "原因" not in lines["71.1"]
    assert "未接挂断" in lines["73.1"]


def test_hung_up_in_the_menu_and_failed_read_differently_in_english(live, db):
    lines = _pop_history(live, db, "en")
    assert "Hung up in the menu" in lines["71.1"] and "Failed" in lines["72.1"]
    assert "Hung up in the menu" not in lines["72.1"]
    assert "(cause 38)" in lines["72.1"] and "cause" not in lines["71.1"]
