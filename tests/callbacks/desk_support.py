"""What the callback queue's tests share: the desk app (tests/desk/conftest.py fixtures) on a
controlled clock inside the calling windows, a Dialler that records the orders it is given, and
tasks made as the capability makes them (an answer on a filed case; a missed call)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.cases.service import file_case
from bridge.db.models import Call, CallDisposition, CaseEvent, User
from bridge.domain_events import DomainEvent
from callbacks import tasks
from callbacks.placing import CallOrder, DiallerError, Placer
from callbacks.tasks import CallbackPolicy, Refusal
from tests.desk.conftest import csrf_of, valid_form

ZONE = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026, 10:00 in Shanghai: a working day, inside the shipped windows.
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)
ANSWER = "答复：垃圾已于当日清运完毕，今后每日清理两次。"


class FixedClock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingDialler:
    """A :class:`callbacks.placing.Dialler` that places nothing: it records each order (``orders``)
    and answers ``ready_for`` with ``refusal`` (None: ready); ``fail`` makes originate raise."""

    name = "asterisk"

    def __init__(self) -> None:
        self.orders: list[CallOrder] = []
        self.refusal: Refusal | None = None
        self.fail: DiallerError | None = None

    async def ready_for(self, extension: str | None) -> Refusal | None:
        if extension is None:
            return Refusal.NO_EXTENSION
        return self.refusal

    async def originate(self, order: CallOrder) -> None:
        if self.fail is not None:
            raise self.fail
        self.orders.append(order)


def on_the_clock(app, clock: FixedClock, dialler: RecordingDialler | None = None) -> Placer | None:
    """The app's queue and Placer on ``clock`` (no Placer without a dialler: "PBX down")."""
    app.state.callback_clock = clock
    policy: CallbackPolicy = app.state.callback_policy
    if dialler is None:
        return None
    placer = app.state.callback_placer = Placer(app.state.db, policy, dialler, live=app.state.live, clock=clock)
    return placer


@pytest.fixture
def dialler(desk_app):
    """The queue's pages on a fixed clock, calling through a :class:`RecordingDialler` (import it
    with ``desk_app`` from tests.desk.conftest)."""
    recording = RecordingDialler()
    on_the_clock(desk_app, FixedClock(), recording)
    return recording


def user_named(session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def answered_task(db, policy: CallbackPolicy, *, filed_by: str | None = "operator", answered_at: datetime = NOW,
                  text: str = ANSWER, now: datetime = NOW, **form) -> tuple[int, str]:
    """A case filed by ``filed_by``, answered at ``answered_at``: (its task id, case number)."""
    with db.session() as session:
        user = user_named(session, filed_by) if filed_by else None
        case = file_case(session, valid_form(call_linkedid=None, best_time="any", **form), user=user,
                         now=answered_at - timedelta(days=1), zone=ZONE)
        event = CaseEvent(case_id=case.id, at=answered_at, kind="answered", actor="forum",
                          detail={"text": text, "unit": "CITY-LJQ", "actor": "李明"})
        session.add(event)
        session.flush()
        task = tasks.create_for_answer(session, DomainEvent(event.id, "case_answered", "answered", case.id,
                                                            case.number, answered_at, event.detail), policy, now)
        return task.id, case.number


def missed_call_task(db, policy: CallbackPolicy, linkedid: str, number: str, arrived_at: datetime, *,
                     disposition: CallDisposition = CallDisposition.ABANDONED, message_file: str | None = None,
                     now: datetime = NOW) -> int:
    with db.session() as session:
        call = Call(linkedid=linkedid, caller_number=number, arrived_at=arrived_at, disposition=disposition,
                    queue_wait_s=40, message_file=message_file, ended_at=arrived_at + timedelta(minutes=1))
        session.add(call)
        session.flush()
        return tasks.create_for_missed_call(session, call, policy, now).id


def token(client) -> str:
    return csrf_of(client.get("/desk/callbacks").text)


def act(client, task_id: int, action: str, htmx: bool = False, **data):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/desk/callbacks/{task_id}/{action}", data={"csrf_token": token(client), **data},
                       headers=headers)


def section(html: str, name: str) -> str:
    """The HTML of the queue's section ``mine``, ``pool``, ``others`` or ``closed``."""
    match = re.search(rf'<section class="card" id="queue-{name}">(.*?)</section>', html, re.S)
    assert match, f"no section {name}"
    return match.group(1)


def task_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="task[^"]*" id="task-(\d+)"', html)]


def task_html(html: str, task_id: int) -> str:
    match = re.search(rf'<article class="task[^"]*" id="task-{task_id}".*?</article>', html, re.S)
    assert match, f"no task {task_id}"
    return match.group(0)


def board_event(number: str, n: int, kind, at: datetime, **more):
    """A thread event as the builtin board reports it (``kind``: a ThreadEventKind)."""
    from bridge.forum.adapter import ThreadEvent

    return ThreadEvent(event_id=f"builtin:{number}:{n}", kind=kind, case_number=number, at=at, unit_code="CITY-LJQ",
                       sequence=n, **more)


def forum_answered_task(db, config, policy: CallbackPolicy, *, filed_by: str = "operator",
                        text: str = ANSWER) -> tuple[int, str]:
    """A case filed by ``filed_by``, posted, accepted and answered on the forum (the forum service
    applies the events), and the task the capability makes of the answer: (task id, case number)."""
    from bridge.forum import service
    from bridge.forum.adapter import PostRef, ThreadEventKind

    deadlines = service.Deadlines.from_config(config)
    with db.session() as session:
        case = file_case(session, valid_form(call_linkedid=None, best_time="any"),
                         user=user_named(session, filed_by), now=NOW - timedelta(days=1), zone=ZONE)
        number = case.number
        service.mark_posted(session, number, PostRef(number, "7", f"https://hotline.example.org/board/threads/{number}"),
                            NOW - timedelta(hours=20), deadlines)
        service.apply_events(session, [
            board_event(number, 1, ThreadEventKind.ACCEPTED, NOW - timedelta(hours=19), actor="王芳"),
            board_event(number, 2, ThreadEventKind.ANSWERED, NOW - timedelta(hours=1), text=text, actor="李明")],
            deadlines)
        event = session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == "answered"))
        task = tasks.create_for_answer(session, DomainEvent(event.id, "case_answered", "answered", case.id, number,
                                                            event.at, event.detail), policy, NOW)
        return task.id, number
