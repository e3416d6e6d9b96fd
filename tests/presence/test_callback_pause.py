"""While an operator places a callback they are paused (reason callback, automatic), and resumed
once the attempt has its result (a pause of their own stays theirs)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bridge.config import validate
from bridge.db.models import User
from bridge.live import LiveEvents
from bridge.presence import service
from bridge.presence.link import PresenceLink
from callbacks import tasks
from callbacks.tasks import CallbackPolicy
from tests.callbacks.test_asterisk_dialler import MORNING, a_due_task, two_operators

CONFIG = validate({}, environ={"HOTLINE_BRIDGE_SESSION_SECRET": "x", "HOTLINE_BRIDGE_AMI_SECRET": "y"})


@pytest.fixture
def alice(db):
    two_operators(db)
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == "alice"))
        return user.id, service.open_session(session, user, "8001", MORNING).token


def begin(db, task_id: int, user_id: int) -> str:
    with db.session() as session:
        attempt, _ = tasks.begin_attempt(session, task_id, session.get(User, user_id), MORNING,
                                         CallbackPolicy.of(CONFIG), dialler="asterisk", extension="8001")
        return attempt.idempotency_key


def settle(db, key: str) -> None:
    with db.session() as session:
        tasks.settle_attempt(session, key, tasks.CallbackAttemptResult.BUSY, MORNING, CallbackPolicy.of(CONFIG),
                             settled_by="events")


def paused(db, token: str):
    with db.session(readonly=True) as session:
        mine = service.my_session(session, token, MORNING)
        return (mine.paused_reason, mine.paused_auto)


async def test_a_callback_pauses_the_operator_until_its_attempt_has_a_result(db, alice):
    user_id, token = alice
    link = PresenceLink(db, CONFIG, LiveEvents(), None, clock=lambda: MORNING)
    task_id, _ = a_due_task(db, CallbackPolicy.of(CONFIG), "13900001111")
    key = begin(db, task_id, user_id)
    await link.callback_started(user_id)
    assert paused(db, token) == ("callback", True)
    [member] = await db.run_in_session(service.desired_members, MORNING)
    assert (member.paused, member.reason) == (True, "callback")
    await link.reconcile()
    assert paused(db, token) == ("callback", True)   # still dialling
    settle(db, key)
    await link.reconcile()
    assert paused(db, token) == (None, False)


async def test_an_operators_own_pause_outlives_the_callback(db, alice):
    user_id, token = alice
    link = PresenceLink(db, CONFIG, LiveEvents(), None, clock=lambda: MORNING)
    with db.session() as session:
        service.pause(session, token, "training", MORNING)
    task_id, _ = a_due_task(db, CallbackPolicy.of(CONFIG), "13900002222")
    key = begin(db, task_id, user_id)
    await link.callback_started(user_id)
    settle(db, key)
    await link.reconcile()
    assert paused(db, token) == ("training", False)
