"""The callbacks JSON API (callbacks.api), on SQLite and PostgreSQL, on a controlled clock.

Calls are placed through the real :class:`callbacks.placing.Placer` with a scripted dialler (the
Asterisk dialler is tested against real Asterisk in its own tests): it answers ``ready_for`` as
told and records each order it was asked to send.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import (
    Call,
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackTask,
    CallDisposition,
    CaseEvent,
    DoNotCall,
    ForumOutbox,
    Role,
    User,
)
from bridge.departments.service import ensure_shipped_units
from bridge.domain_events import DomainEvent
from bridge.health import Health
from bridge.web.app import create_app
from callbacks import api, tasks
from callbacks.placing import CallOrder, DiallerError, Placer
from callbacks.tasks import CallbackPolicy, Refusal
from tests.forum.test_builtin_support import SECRETS, case_form
from tests.sign_ins import sign_in_at_desk
from tests.wav_files import wav_bytes

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026, a working day, inside the shipped windows (09:00-12:00, 14:00-20:00).
MORNING = datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)
PHONE = "+8613912345678"
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ScriptedDialler:
    """A :class:`callbacks.placing.Dialler` that refuses or fails as told; ``arrivals`` > 0 makes
    ``ready_for`` wait until that many presses arrived (two operators pressing at once)."""

    name = "asterisk"

    def __init__(self) -> None:
        self.refusal: Refusal | None = None
        self.error: DiallerError | None = None
        self.sent: list[CallOrder] = []
        self.arrivals = 0
        self._waiting: list[asyncio.Future] = []

    async def ready_for(self, extension: str | None) -> Refusal | None:
        if self.arrivals:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append(future)
            if len(self._waiting) == self.arrivals:
                for waiting in self._waiting:
                    waiting.set_result(None)
            await future
        if extension is None:
            return Refusal.NO_EXTENSION
        return self.refusal

    async def originate(self, order: CallOrder) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(order)


@pytest.fixture
def config(db_url, tmp_path):
    (tmp_path / "recordings").mkdir()
    return validate({"database": {"url": db_url}, "pbx": {"recordings_dir": str(tmp_path / "recordings")}},
                    environ=SECRETS, base_dir=tmp_path)


@pytest.fixture
def people(db) -> dict[str, dict[str, str]]:
    """{username: bearer headers}: operators alice (8001) and bob (8002), a supervisor, an admin, the
    spokesperson of CITY-LJQ (ljq) and of CITY-JCY (jcy)."""
    found = {}
    with db.session() as session:
        ensure_shipped_units(session, MORNING)
        for name, role, extension, unit in (
                ("alice", Role.OPERATOR, "8001", None), ("bob", Role.OPERATOR, "8002", None),
                ("sue", Role.SUPERVISOR, "8009", None), ("root", Role.ADMIN, None, None),
                ("ljq", Role.SPOKESPERSON, None, "CITY-LJQ"), ("jcy", Role.SPOKESPERSON, None, "CITY-JCY")):
            user = add_user(session, name, role, PASSWORD, extension=extension, department_code=unit, now=MORNING)
            found[name] = {"Authorization": f"Bearer {create_token(session, user, MORNING)}"}
    return found


@pytest.fixture
def clock():
    return Clock(MORNING)


@pytest.fixture
def dialler():
    return ScriptedDialler()


@pytest.fixture
def app(db, config, people, clock, dialler):
    app = create_app(config, db, Health())
    app.dependency_overrides[api.clock] = lambda: clock
    app.state.callback_placer = Placer(db, CallbackPolicy.of(config), dialler, live=app.state.live, clock=clock)
    return app


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def policy(config):
    return CallbackPolicy.of(config)


def user_named(session, name: str) -> User:
    return session.scalar(select(User).where(User.username == name))


def answered_case(db, policy, *, by: str | None = "alice", unit: str = "CITY-LJQ", phone: str = "139 1234 5678",
                  text: str = "已安排清理", at: datetime = MORNING, **form) -> int:
    """A case filed by ``by`` and answered by its unit at ``at``: the id of its callback task."""
    with db.session() as session:
        filer = user_named(session, by) if by else None
        case = file_case(session, case_form(department=unit, caller_phone=phone, best_time="any", **form), user=filer,
                         now=at - timedelta(days=1), zone=ZONE)
        event = CaseEvent(case_id=case.id, at=at, kind="answered", actor="forum", detail={"text": text, "unit": unit})
        session.add(event)
        session.flush()
        task = tasks.create_for_answer(session, DomainEvent(event.id, "case_answered", "answered", case.id,
                                                            case.number, at, event.detail), policy, at)
        return task.id if task is not None else None


def a_missed_call(db, policy, linkedid: str = "1764730000.7") -> int:
    with db.session() as session:
        call = Call(linkedid=linkedid, caller_number="13800001111", arrived_at=MORNING - timedelta(hours=1),
                    disposition=CallDisposition.ABANDONED)
        session.add(call)
        session.flush()
        return tasks.create_for_missed_call(session, call, policy, MORNING).id


def settle(db, policy, task_id: int, result: CallbackAttemptResult, *, recording: str | None = None) -> None:
    with db.session() as session:
        [attempt] = [a for a in session.get(CallbackTask, task_id).attempts if a.ended_at is None]
        tasks.settle_attempt(session, attempt.idempotency_key, result, MORNING, policy, settled_by="events",
                             answered_at=MORNING if result is CallbackAttemptResult.ANSWERED else None,
                             recording=recording)


def count(db, model, *where) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def place(client, people, task_id: int, who: str = "alice"):
    return client.post(f"/api/v1/callbacks/{task_id}/attempts", headers=people[who])


def answered_call(client, people, db, policy, task_id: int, who: str = "alice") -> None:
    assert place(client, people, task_id, who).status_code == 201
    settle(db, policy, task_id, CallbackAttemptResult.ANSWERED)


# ------------------------------------------------------------------- reading


def test_a_task_reads_back_with_its_briefing_in_utc(client, people, db, policy):
    task_id = answered_case(db, policy)
    response = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"])
    assert response.status_code == 200, response.text
    task = response.json()
    assert (task["id"], task["reason"], task["state"], task["owner"], task["phone"]) == (
        task_id, "answer", "due", "alice", PHONE)
    assert task["case_number"].startswith("96811-2026-") and task["call"] is None
    assert (task["due_at"], task["waiting_since"]) == ("2026-12-03T02:00:00Z", "2026-12-03T02:00:00Z")
    assert task["briefing"] == {"caller": "朱女士", "answer_text": "已安排清理", "answer_unit": "CITY-LJQ", "thread_url": None,
                                "case_state": "queued", "newer_answer": False, "moved_since": []}
    assert (task["outcome"], task["satisfaction"], task["review"], task["needs_check"], task["attempts"]) == (
        None, None, False, None, [])
    assert client.get("/api/v1/callbacks/999999", headers=people["alice"]).status_code == 404


def test_a_scheduled_task_whose_time_came_reads_due(client, people, db, policy, clock):
    with db.session() as session:
        ensure_shipped_units(session)
    evening = MORNING.replace(hour=21)  # after the windows: due tomorrow at 09:00
    task_id = answered_case(db, policy, at=evening)
    clock.now = evening
    assert client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()["state"] == "scheduled"
    clock.now = MORNING + timedelta(days=1)
    assert client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()["state"] == "due"
    [listed] = client.get("/api/v1/callbacks?state=due", headers=people["alice"]).json()["callbacks"]
    assert listed["id"] == task_id
    assert client.get("/api/v1/callbacks?state=scheduled", headers=people["alice"]).json()["total"] == 0


def test_the_list_filters_by_state_owner_case_and_reason_and_pages(client, people, db, policy):
    alices = answered_case(db, policy, by="alice")
    bobs = answered_case(db, policy, by="bob", phone="139 0000 1111")
    missed = a_missed_call(db, policy)
    get = lambda query: client.get(f"/api/v1/callbacks{query}", headers=people["alice"]).json()  # noqa: E731
    # The longest-waiting caller first: the missed call (an hour before the answers) leads.
    assert [t["id"] for t in get("")["callbacks"]] == [missed, alices, bobs]
    assert [t["id"] for t in get("?owner=bob")["callbacks"]] == [bobs]
    bobs_case = client.get(f"/api/v1/callbacks/{bobs}", headers=people["alice"]).json()["case_number"]
    assert [t["id"] for t in get(f"?case={bobs_case}")["callbacks"]] == [bobs]
    [call] = get("?reason=missed_call")["callbacks"]
    assert call["case_number"] is None and call["call"]["linkedid"] == "1764730000.7"
    assert call["briefing"] is None and call["phone"] == "13800001111"
    assert get("?state=done")["total"] == 0 and get("?state=due")["total"] == 3
    second = get("?per_page=2&page=2")
    assert (second["total"], second["page"], [t["id"] for t in second["callbacks"]]) == (3, 2, [bobs])
    bad = client.get("/api/v1/callbacks?state=waiting", headers=people["alice"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "state"


# ------------------------------------------------------------------- placing


def test_placing_a_call_writes_the_attempt_then_dials_it(client, people, db, policy, dialler):
    task_id = answered_case(db, policy)
    response = place(client, people, task_id)
    assert response.status_code == 201, response.text
    body = response.json()
    attempt = body["attempt"]
    assert (attempt["result"], attempt["ended_at"], attempt["operator"], attempt["dialler"]) == (
        None, None, "alice", "asterisk")
    assert body["task"]["state"] == "in_progress" and body["task"]["held_by"] == "alice"
    [order] = dialler.sent
    assert (order.task_id, order.attempt_id, order.phone, order.extension, order.operator) == (
        task_id, attempt["id"], PHONE, "8001", "alice")
    settle(db, policy, task_id, CallbackAttemptResult.BUSY)
    [settled] = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()["attempts"]
    assert settled["result"] == "busy" and settled["ended_at"] is not None


@pytest.mark.parametrize("refusal", [Refusal.DEVICE_BUSY, Refusal.DEVICE_UNREGISTERED, Refusal.PBX_DOWN])
def test_the_pbx_and_the_desk_phone_are_asked_first(client, people, db, policy, dialler, refusal):
    task_id = answered_case(db, policy)
    dialler.refusal = refusal
    response = place(client, people, task_id)
    assert response.status_code == 409
    assert response.json() == {"reason": refusal.value, "detail": "", "holder": None}
    assert dialler.sent == [] and count(db, CallbackAttempt) == 0


def test_without_a_pbx_link_every_call_is_refused_pbx_down(app, client, people, db, policy):
    task_id = answered_case(db, policy)
    del app.state.callback_placer
    response = place(client, people, task_id)
    assert response.status_code == 409 and response.json()["reason"] == "pbx_down"
    assert place(client, people, 999999).status_code == 404
    assert count(db, CallbackAttempt) == 0


def test_a_call_that_could_not_be_sent_is_one_attempt_not_counted_on_the_caller(client, people, db, policy, dialler):
    task_id = answered_case(db, policy)
    dialler.error = DiallerError("AMI link lost before the write", sent=False)
    response = place(client, people, task_id)
    assert response.status_code == 409 and response.json()["reason"] == "pbx_down"
    task = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()
    [attempt] = task["attempts"]
    assert attempt["result"] == "operator_no_answer"   # nothing rang: no step on the caller's ladder
    assert task["state"] == "due"


def test_no_call_outside_the_windows_nor_to_a_phone_less_operator(client, people, db, policy, clock):
    task_id = answered_case(db, policy)
    clock.now = MORNING.replace(hour=22)
    night = place(client, people, task_id)
    assert night.status_code == 409 and night.json()["reason"] == "outside_windows"
    assert night.json()["detail"] == "2026-12-04T01:00:00+00:00"  # tomorrow 09:00 in Beijing
    clock.now = MORNING
    admin = place(client, people, task_id, "root")
    assert admin.status_code == 409 and admin.json()["reason"] == "no_extension"
    assert count(db, CallbackAttempt) == 0


def test_another_operators_turn_hold_or_live_attempt_is_refused_with_the_holder(client, people, db, policy):
    sign_in_at_desk(db, "alice", MORNING - timedelta(hours=1))
    alices = answered_case(db, policy, by="alice")
    turn = place(client, people, alices, "bob")
    assert turn.status_code == 409 and (turn.json()["reason"], turn.json()["holder"]) == ("owners_turn", "alice")
    pool = answered_case(db, policy, by=None, phone="139 0000 1111")
    with db.session() as session:
        tasks.take(session, pool, user_named(session, "alice"), MORNING, policy)
    held = place(client, people, pool, "bob")
    assert held.status_code == 409 and (held.json()["reason"], held.json()["holder"]) == ("held_by_other", "alice")
    assert place(client, people, alices).status_code == 201
    again = place(client, people, alices)
    assert again.status_code == 409 and again.json()["reason"] == "attempt_live"
    assert count(db, CallbackAttempt) == 1


def test_two_operators_pressing_call_at_once_place_one_call(app, people, db, policy, dialler):
    task_id = answered_case(db, policy, by=None)  # in the pool: either may take it
    dialler.arrivals = 2  # both presses pass the PBX check before either writes its attempt

    async def press_both():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(*(http.post(f"/api/v1/callbacks/{task_id}/attempts", headers=people[who])
                                          for who in ("alice", "bob")))

    answers = asyncio.run(press_both())
    assert sorted(r.status_code for r in answers) == [201, 409]
    [loser] = [r for r in answers if r.status_code == 409]
    assert loser.json()["reason"] in ("attempt_live", "held_by_other")
    assert count(db, CallbackAttempt) == 1 and len(dialler.sent) == 1


# ------------------------------------------------------------------- outcome


def test_informed_with_a_poor_grade_flags_the_review(client, people, db, policy):
    task_id = answered_case(db, policy)
    answered_call(client, people, db, policy, task_id)
    response = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                           json={"outcome": "informed", "satisfaction": 2, "note": "unhappy with the delay"})
    assert response.status_code == 200, response.text
    task = response.json()
    assert (task["state"], task["outcome"], task["satisfaction"], task["review"], task["note"]) == (
        "done", "informed", 2, True, "unhappy with the delay")
    [attempt] = task["attempts"]
    assert (attempt["result"], attempt["outcome"], attempt["satisfaction"]) == ("answered", "informed", 2)
    again = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                        json={"outcome": "informed", "satisfaction": 5})
    assert again.status_code == 409 and again.json()["reason"] == "closed"


INVALID_OUTCOMES = [
    ({"outcome": "informed"}, "satisfaction"),
    ({"outcome": "informed", "satisfaction": 6}, "satisfaction"),
    ({"outcome": "voicemail", "satisfaction": 3}, "satisfaction"),
    ({"outcome": "follow_up"}, "text"),
    ({"outcome": "follow_up", "text": "   "}, "text"),
    ({"outcome": "follow_up", "text": "请回电 13912345678"}, "text"),  # private data never goes to the forum
    ({"outcome": "wrong_number", "text": "a question"}, "text"),
    ({"outcome": "superseded"}, "outcome"),
    ({"outcome": "informed", "satisfaction": 4, "mood": "fine"}, "mood"),
]


@pytest.mark.parametrize("body, field", INVALID_OUTCOMES, ids=[f"{b['outcome']}-{f}" for b, f in INVALID_OUTCOMES])
def test_an_invalid_outcome_names_the_field_and_stores_nothing(client, people, db, policy, body, field):
    task_id = answered_case(db, policy)
    answered_call(client, people, db, policy, task_id)
    events = count(db, CaseEvent)
    response = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"], json=body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["detail"]] == [field]
    task = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()
    assert (task["state"], task["outcome"], task["attempts"][0]["outcome"]) == ("in_progress", None, None)
    assert count(db, CaseEvent) == events
    assert count(db, ForumOutbox, ForumOutbox.operation == "post_follow_up") == 0


def test_no_outcome_before_the_caller_answered(client, people, db, policy):
    task_id = answered_case(db, policy)
    response = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                           json={"outcome": "informed", "satisfaction": 5})
    assert response.status_code == 409 and response.json()["reason"] == "not_due"


def test_a_follow_up_goes_to_the_forum_thread_through_the_outbox(client, people, db, policy):
    task_id = answered_case(db, policy)
    answered_call(client, people, db, policy, task_id)
    response = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                           json={"outcome": "follow_up", "text": "垃圾什么时候能再清一次？"})
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["outcome"]) == ("done", "follow_up")
    with db.session(readonly=True) as session:
        [row] = session.scalars(select(ForumOutbox).where(ForumOutbox.operation == "post_follow_up")).all()
        assert row.payload == {"text": "朱女士: 垃圾什么时候能再清一次？"}


def test_do_not_call_holds_on_a_second_case_until_a_supervisor_lifts_it(client, people, db, policy):
    first = answered_case(db, policy)
    waiting = answered_case(db, policy, by="alice")  # another case of the same caller, its task waiting
    answered_call(client, people, db, policy, first)
    response = client.post(f"/api/v1/callbacks/{first}/outcome", headers=people["alice"],
                           json={"outcome": "do_not_call", "note": "asked never to be called"})
    assert response.status_code == 200 and response.json()["state"] == "done"
    refused = place(client, people, waiting)
    assert refused.status_code == 409 and refused.json()["reason"] == "do_not_call"
    assert answered_case(db, policy) is None  # a new answer of a third case makes no task
    assert client.post("/api/v1/do-not-call/lift", headers=people["alice"], json={"phone": PHONE}).status_code == 403
    lifted = client.post("/api/v1/do-not-call/lift", headers=people["sue"], json={"phone": "139 1234 5678"})
    assert lifted.status_code == 200 and lifted.json() == {"phone": PHONE, "lifted": True}
    assert client.post("/api/v1/do-not-call/lift", headers=people["sue"], json={"phone": PHONE}).status_code == 404
    bad = client.post("/api/v1/do-not-call/lift", headers=people["sue"], json={"phone": "abc"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "phone"
    assert place(client, people, waiting).status_code == 201
    assert count(db, DoNotCall, DoNotCall.lifted_at.is_(None)) == 0


# ----------------------------------------------------------------- supervisors


def test_a_supervisor_reassigns_and_releases(client, people, db, policy):
    sign_in_at_desk(db, "bob", MORNING - timedelta(hours=1))  # at his desk: the task he is given is his turn
    task_id = answered_case(db, policy, by="alice")
    assert client.post(f"/api/v1/callbacks/{task_id}/release", headers=people["alice"]).status_code == 403
    moved = client.post(f"/api/v1/callbacks/{task_id}/reassign", headers=people["sue"], json={"user": "bob"})
    assert moved.status_code == 200 and moved.json()["owner"] == "bob"
    assert place(client, people, task_id, "alice").json()["holder"] == "bob"  # bob's turn now
    nobody = client.post(f"/api/v1/callbacks/{task_id}/reassign", headers=people["sue"], json={"user": "ljq"})
    assert nobody.status_code == 422 and nobody.json()["detail"][0]["field"] == "user"
    released = client.post(f"/api/v1/callbacks/{task_id}/release", headers=people["sue"])
    assert released.status_code == 200 and released.json()["owner"] is None
    assert place(client, people, task_id, "alice").status_code == 201  # from the pool
    live = client.post(f"/api/v1/callbacks/{task_id}/release", headers=people["sue"])
    assert live.status_code == 409 and live.json()["reason"] == "attempt_live"
    assert client.post("/api/v1/callbacks/999999/release", headers=people["sue"]).status_code == 404


# ------------------------------------------------------------------ privacy


def test_a_spokesperson_reads_their_units_tasks_without_the_number(client, people, db, policy):
    ours = answered_case(db, policy, unit="CITY-LJQ")
    theirs = answered_case(db, policy, unit="CITY-JCY", phone="139 0000 1111")
    a_missed_call(db, policy)
    answered_call(client, people, db, policy, ours)
    listed = client.get("/api/v1/callbacks", headers=people["ljq"])
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["callbacks"]] == [ours]
    detail = client.get(f"/api/v1/callbacks/{ours}", headers=people["ljq"])
    assert detail.status_code == 200 and detail.json()["briefing"]["answer_text"] == "已安排清理"
    for text in (listed.text, detail.text):
        for number in ("13912345678", "1391234", "5678", "13800001111"):
            assert number not in text
    assert detail.json()["phone"] is None and detail.json()["attempts"][0]["note"] is None
    assert client.get(f"/api/v1/callbacks/{theirs}", headers=people["ljq"]).status_code == 404
    assert place(client, people, ours, "ljq").status_code == 403
    outcome = client.post(f"/api/v1/callbacks/{ours}/outcome", headers=people["ljq"],
                          json={"outcome": "informed", "satisfaction": 5})
    assert outcome.status_code == 403
    assert client.get("/api/v1/callbacks", headers={}).status_code == 401


def test_an_attempts_recording_is_served_to_the_hotline_only(client, people, db, policy, tmp_path):
    task_id = answered_case(db, policy)
    assert place(client, people, task_id).status_code == 201
    (tmp_path / "recordings" / "cb-call.wav").write_bytes(the_call := wav_bytes())
    settle(db, policy, task_id, CallbackAttemptResult.ANSWERED, recording="/var/spool/asterisk/recordings/cb-call")
    [attempt] = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()["attempts"]
    assert attempt["recording"] == f"/api/v1/callbacks/{task_id}/attempts/{attempt['id']}/recording"
    audio = client.get(attempt["recording"], headers=people["sue"])
    assert (audio.status_code, audio.content, audio.headers["content-type"]) == (200, the_call, "audio/wav")
    assert client.get(attempt["recording"], headers=people["ljq"]).status_code == 403
    wrong_task = f"/api/v1/callbacks/{task_id + 1}/attempts/{attempt['id']}/recording"
    assert client.get(wrong_task, headers=people["alice"]).status_code == 404


# ------------------------------------------------------------ a person settles


def test_a_wrong_number_waits_for_the_checked_number_then_is_due_again(client, people, db, policy):
    task_id = answered_case(db, policy)
    answered_call(client, people, db, policy, task_id)
    wrong = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                        json={"outcome": "wrong_number", "note": "a shop answered"})
    assert (wrong.json()["state"], wrong.json()["needs_check"]) == ("unreachable", "check_number")
    bad = client.post(f"/api/v1/callbacks/{task_id}/number", headers=people["alice"], json={"phone": "12345"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "phone"
    assert client.post(f"/api/v1/callbacks/{task_id}/number", headers=people["ljq"],
                       json={"phone": "139 0000 2222"}).status_code == 403
    fixed = client.post(f"/api/v1/callbacks/{task_id}/number", headers=people["alice"], json={"phone": "139 0000 2222"})
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["state"], fixed.json()["needs_check"], fixed.json()["phone"]) == ("due", None, "+8613900002222")
    again = client.post(f"/api/v1/callbacks/{task_id}/number", headers=people["alice"], json={"phone": "139 0000 2222"})
    assert again.status_code == 409 and again.json()["reason"] == "closed"
    assert place(client, people, task_id).status_code == 201


def test_an_attempt_whose_result_was_lost_is_settled_by_the_outcome(client, people, db, policy):
    task_id = answered_case(db, policy)
    assert place(client, people, task_id).status_code == 201
    settle(db, policy, task_id, CallbackAttemptResult.UNKNOWN)
    lost = client.get(f"/api/v1/callbacks/{task_id}", headers=people["alice"]).json()
    assert (lost["state"], lost["needs_check"], lost["attempts"][0]["result"]) == ("due", "check_attempt", "unknown")
    assert place(client, people, task_id).json()["reason"] == "needs_check"  # never silently retried
    told = client.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                       json={"outcome": "informed", "satisfaction": 4})
    assert told.status_code == 200
    [attempt] = told.json()["attempts"]
    assert (told.json()["state"], attempt["result"], attempt["settled_by"]) == ("done", "answered", "person")


def test_desks_hear_of_each_change_on_the_live_feed(app, people, db, policy):
    task_id = answered_case(db, policy, by="alice")

    async def changes() -> list[tuple[str, str, dict]]:
        transport = httpx.ASGITransport(app=app)
        async with app.state.live.subscribe() as feed, httpx.AsyncClient(transport=transport,
                                                                         base_url="http://test") as http:
            assert (await http.post(f"/api/v1/callbacks/{task_id}/attempts", headers=people["alice"])).status_code == 201
            await asyncio.to_thread(settle, db, policy, task_id, CallbackAttemptResult.ANSWERED)
            outcome = await http.post(f"/api/v1/callbacks/{task_id}/outcome", headers=people["alice"],
                                      json={"outcome": "informed", "satisfaction": 5})
            assert outcome.status_code == 200
            return _drain(feed)

    assert asyncio.run(changes()) == [("callbacks", "attempt_started", {"task_id": task_id}),
                                      ("callbacks", "outcome", {"task_id": task_id})]


def _drain(feed) -> list[tuple[str, str, dict]]:
    found = []
    while not feed.empty():
        event = feed.get_nowait()
        found.append((event.topic, event.kind, event.data))
    return found
