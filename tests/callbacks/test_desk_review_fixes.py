"""What a review of the queue found (HTTP level, both DBs): the call rings the desk phone the
operator signed in at, a live call is not reassigned, another operator's missed call is not
closed during their turn, the attempt's recording plays on the desk, bad ids answer 422."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.db.models import CallbackAttemptResult, CallbackState, CallbackTask, User
from bridge.presence.service import end_session
from callbacks import tasks
from tests.callbacks.desk_support import (
    NOW,
    act,
    answered_task,
    missed_call_task,
)
from tests.callbacks.desk_support import dialler  # noqa: F401 (fixture)
from tests.desk.conftest import client, clock, desk_app, desk_config, operator, people, sign_in  # noqa: F401
from tests.wav_files import wav_bytes
from tests.sign_ins import sign_in_at_desk

pytestmark = pytest.mark.postgres


def test_the_call_rings_the_desk_phone_the_operator_signed_in_at(client, db, desk_app, dialler):  # noqa: F811
    assert sign_in(client, "operator", extension="8009").status_code == 303   # the account says 8001
    task, _ = answered_task(db, desk_app.state.callback_policy, filed_by="operator")
    assert act(client, task, "call").status_code == 200
    assert [order.extension for order in dialler.orders] == ["8009"]


def test_a_task_is_not_reassigned_while_its_call_is_live(operator, db, desk_app, dialler):  # noqa: F811
    task, _ = answered_task(db, desk_app.state.callback_policy, filed_by="operator")
    assert act(operator, task, "call").status_code == 200
    with db.session() as session:
        boss = session.query(User).filter_by(username="supervisor").one()
        with pytest.raises(tasks.CallbackRefused) as refused:
            tasks.reassign(session, task, boss, NOW)
        assert refused.value.refusal is tasks.Refusal.ATTEMPT_LIVE
        assert session.get(CallbackTask, task).held_by.username == "operator"


def test_another_operators_missed_call_is_not_closed_during_their_turn(operator, db, desk_app, dialler):  # noqa: F811
    task = missed_call_task(db, desk_app.state.callback_policy, "91.1", "13800009999", NOW - timedelta(minutes=5))
    desk = sign_in_at_desk(db, "supervisor", NOW - timedelta(hours=1))
    with db.session() as session:
        tasks.reassign(session, task, session.query(User).filter_by(username="supervisor").one(), NOW)
    refused = act(operator, task, "close", note="已回电")
    assert refused.status_code == 409
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, task).state is CallbackState.DUE
    with db.session() as session:  # the supervisor signs out: the pool's at once, and it may be closed
        end_session(session, desk, NOW)
    assert act(operator, task, "close", note="已回电").status_code == 303
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, task).state is CallbackState.DONE


def test_the_attempts_recording_plays_on_the_desk(operator, db, desk_app, desk_config, dialler):  # noqa: F811
    policy = desk_app.state.callback_policy
    task, _ = answered_task(db, policy, filed_by="operator")
    assert act(operator, task, "call").status_code == 200
    folder = desk_config.path(desk_config.pbx.recordings_dir)
    (folder / "callback-1.wav").write_bytes(wav_bytes())
    with db.session() as session:
        tasks.settle_attempt(session, dialler.orders[0].key, CallbackAttemptResult.ANSWERED, NOW, policy,
                             settled_by="events", answered_at=NOW, linkedid="92.1",
                             recording=str(folder / "callback-1.wav"))
        attempt_id = session.get(CallbackTask, task).attempts[0].id
    page = operator.get("/desk/callbacks").text
    url = f"/desk/callbacks/{task}/attempts/{attempt_id}/recording"
    assert f'src="{url}"' in page
    audio = operator.get(url)
    assert audio.status_code == 200 and audio.content.startswith(b"RIFF")
    assert operator.get(f"/desk/callbacks/{task + 1}/attempts/{attempt_id}/recording").status_code == 404


def test_an_id_out_of_range_is_refused_not_a_server_error(operator, dialler):  # noqa: F811
    from tests.desk.conftest import csrf_of

    token = csrf_of(operator.get("/desk/callbacks").text)
    response = operator.post("/desk/callbacks/99999999999999999999/take", data={"csrf_token": token})
    assert response.status_code == 422
