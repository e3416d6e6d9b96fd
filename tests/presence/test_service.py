"""Desk sessions and presence in the database (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.accounts.service import add_user, disable_user
from bridge.db.models import DeskSessionEnd, PauseReason, Role
from bridge.presence import service
from bridge.presence.queue import Member, plan

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def people(session):
    alice = add_user(session, "alice", Role.OPERATOR, "a long enough password", display_name="王芳")
    bob = add_user(session, "bob", Role.OPERATOR, "a long enough password", display_name="李军")
    return alice, bob


def test_an_extension_another_user_holds_is_refused_naming_them(session, people):
    alice, bob = people
    service.open_session(session, alice, "8001", NOW)
    with pytest.raises(service.ExtensionTaken) as taken:
        service.open_session(session, bob, "8001", NOW)
    assert taken.value.holder_name == "王芳"
    assert service.signed_in_user_ids(session, NOW) == {alice.id}


def test_signing_in_again_replaces_the_older_session(session, people):
    alice, _ = people
    first = service.open_session(session, alice, "8001", NOW)
    second = service.open_session(session, alice, "8002", NOW + timedelta(minutes=1))
    assert first.end_reason is DeskSessionEnd.REPLACED
    assert service.active_session(session, first.token, NOW) is None
    assert service.active_session(session, second.token, NOW).extension == "8002"


def test_present_away_and_back(session, people):
    alice, bob = people
    a = service.open_session(session, alice, "8001", NOW)
    service.open_session(session, bob, None, NOW)   # no extension: signed in, never in the queue
    assert service.present_user_ids(session, NOW) == {alice.id}
    assert service.signed_in_user_ids(session, NOW) == {alice.id, bob.id}
    later = NOW + timedelta(seconds=121)
    assert service.present_user_ids(session, later) == set()
    assert service.signed_in_user_ids(session, later) == {alice.id, bob.id}
    assert service.desired_members(session, later) == []
    touched = service.touch(session, a.token, later)
    assert touched.active and touched.came_back
    assert [m.interface for m in service.desired_members(session, later)] == ["PJSIP/8001"]
    assert service.present_user_ids(session, later, timeout_s=600) == {alice.id}


def test_sign_out_expiry_and_disabling_end_the_session(session, people):
    alice, bob = people
    a = service.open_session(session, alice, "8001", NOW)
    b = service.open_session(session, bob, "8002", NOW)
    service.end_session(session, a.token, NOW)
    assert service.active_session(session, a.token, NOW) is None
    assert not service.touch(session, a.token, NOW).active
    disable_user(session, "bob", now=NOW)
    assert service.active_session(session, b.token, NOW) is None   # at once, before any sweep
    ended = service.sweep(session, NOW)
    assert [(r.user_id, r.end_reason) for r in ended] == [(bob.id, DeskSessionEnd.DISABLED)]
    c = service.open_session(session, alice, "8001", NOW)
    twelve_hours = NOW + service.SESSION_MAX_AGE
    assert service.active_session(session, c.token, twelve_hours) is None
    assert [r.end_reason for r in service.sweep(session, twelve_hours)] == [DeskSessionEnd.EXPIRED]


def test_pause_resume_and_the_automatic_callback_pause(session, people):
    alice, bob = people
    a = service.open_session(session, alice, "8001", NOW)
    service.pause(session, a.token, "break", NOW)
    [member] = service.desired_members(session, NOW)
    assert (member.paused, member.reason, member.name) == (True, "break", "王芳")
    assert not service.pause_for_callback(session, alice.id, NOW)   # her own pause stays hers
    service.resume(session, a.token, NOW)
    assert service.pause_for_callback(session, alice.id, NOW)
    assert a.paused_reason is PauseReason.CALLBACK and a.paused_auto
    assert service.resume_after_callback(session, a.id)
    assert a.paused_reason is None
    with pytest.raises(ValueError):
        service.pause(session, a.token, "nap", NOW)
    b = service.open_session(session, bob, None, NOW)
    with pytest.raises(service.NotSignedIn):
        service.pause(session, b.token, "break", NOW)


def test_a_supervisor_signs_an_operator_out(session, people):
    alice, bob = people
    a = service.open_session(session, alice, "8001", NOW)
    assert service.end_by_supervisor(session, a.id, bob.id, NOW).name == "王芳"
    assert a.end_reason is DeskSessionEnd.ENDED_BY_SUPERVISOR and a.ended_by_id == bob.id
    assert service.end_by_supervisor(session, a.id, bob.id, NOW) is None
    assert service.signed_in_user_ids(session, NOW) == set()


def test_the_plan_adds_removes_only_dynamic_members_and_pauses_with_the_reason():
    want = [service.DesiredMember("PJSIP/8001", "王芳", False, "", 1),
            service.DesiredMember("PJSIP/8003", "李军", True, "training", 2)]
    actual = {"PJSIP/8001": Member("PJSIP/8001", "王芳", paused=True, reason="break"),
              "PJSIP/8002": Member("PJSIP/8002", "8002"),
              "PJSIP/8009": Member("PJSIP/8009", "static one", dynamic=False)}
    actions = plan("hotline", want, actual)
    assert [(a["Action"], a["Interface"]) for a in actions] == [
        ("QueueRemove", "PJSIP/8002"), ("QueuePause", "PJSIP/8001"), ("QueueAdd", "PJSIP/8003"),
        ("QueuePause", "PJSIP/8003")]
    assert actions[1]["Paused"] == "false"
    assert actions[2]["MemberName"] == "李军" and actions[3]["Reason"] == "training"
    assert plan("hotline", want, {"PJSIP/8001": Member("PJSIP/8001", "王芳"),
                                  "PJSIP/8003": Member("PJSIP/8003", "李军", paused=True, reason="training")}) == []
