"""GET /desk/events over real HTTP (uvicorn): the stream, the operator's extension filter, disconnects."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from bridge.live import LiveEvent
from tests.desk.conftest import PASSWORD, csrf_of

pytestmark = pytest.mark.timeout(60)


def signed_in(live, username="operator") -> httpx.Client:
    client = httpx.Client(base_url=live.url, timeout=10)
    token = csrf_of(client.get("/desk/login").text)
    response = client.post("/desk/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    assert response.status_code == 303
    return client


def read_events(lines, wanted: int) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            if len(events) == wanted:
                return events
    return events


def test_stream_filters_on_the_extension_and_ends_with_the_client(live):
    client = signed_in(live)
    with client.stream("GET", "/desk/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert read_events(lines, 1) == [("ready", {"extension": "8001"})]
        assert live.app.state.live.subscriber_count == 1
        data = {"linkedid": "5.1", "caller_number": "13912345678", "caller_name": "", "arrived_at": None}
        live.publish(LiveEvent("call", "ringing", {**data, "extension": "8002"}))  # not ours
        live.publish(LiveEvent("call", "queued", {**data, "extension": None}))  # not for a pop
        live.publish(LiveEvent("call", "ringing", {**data, "extension": "8001"}))
        live.publish(LiveEvent("case", "state_changed", {"number": "96811-2026-000009", "state": "accepted"}))
        live.publish(LiveEvent("call", "ended", {**data, "extension": None}))
        events = read_events(lines, 4)
        assert [name for name, _ in events] == ["call", "case", "call", "calls"]
        pop = events[0][1]
        assert pop["kind"] == "ringing" and pop["linkedid"] == "5.1"
        assert 'class="call-pop" data-linkedid="5.1"' in pop["html"] and "139 1234 5678" in pop["html"]
        assert events[1][1] == {"number": "96811-2026-000009", "kind": "state_changed", "state": "accepted"}
        assert events[2][1] == {"linkedid": "5.1", "kind": "ended"}
    client.close()
    deadline = time.monotonic() + 20
    while live.app.state.live.subscriber_count:
        assert time.monotonic() < deadline, "the subscription outlived the client"
        time.sleep(0.1)


def test_stream_needs_a_desk_session(live):
    with httpx.Client(base_url=live.url, timeout=5) as client:
        response = client.get("/desk/events", headers={"Accept": "text/event-stream"})
        assert response.status_code == 401


def test_callback_changes_reach_the_page_published_or_found_in_the_tables(live, db):
    from datetime import datetime, timezone

    from bridge.db.models import Call, CallbackReason, CallbackState, CallbackTask, CallDisposition

    live.app.state.desk_case_check_s = 0.3
    client = signed_in(live)
    with client.stream("GET", "/desk/events") as response:
        lines = response.iter_lines()
        assert read_events(lines, 1)[0][0] == "ready"
        live.publish(LiveEvent("callbacks", "attempt_started", {"task_id": 7}))  # as the Placer publishes
        assert read_events(lines, 1) == [("callbacks", {"task_id": 7, "linkedid": None, "kind": "attempt_started"})]
        now = datetime.now(timezone.utc)
        with db.session() as session:  # a task written by a writer that announces nothing
            call = Call(linkedid="6.1", caller_number="13912345678", arrived_at=now,
                        disposition=CallDisposition.ABANDONED)
            session.add(call)
            session.flush()
            session.add(CallbackTask(reason=CallbackReason.MISSED_CALL, call_id=call.id, phone="+8613912345678",
                                     state=CallbackState.DUE, due_at=now, waiting_since=now, assigned_at=now))
        assert read_events(lines, 1) == [("callbacks", {"task_id": None, "linkedid": None, "kind": "changed"})]
    client.close()
