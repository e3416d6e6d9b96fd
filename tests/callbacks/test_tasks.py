"""Callback tasks in the database (callbacks.tasks), on SQLite and PostgreSQL, on a controlled clock."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bridge.accounts.passwords import hash_password
from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import (
    CallbackAttemptResult,
    CallbackCheck,
    CallbackMessage,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    CaseEvent,
    DeskSession,
    ForumOutbox,
    Role,
    User,
)
from bridge.departments.service import ensure_shipped_units
from bridge.domain_events import DomainEvent
from bridge.presence.service import end_session, open_session
from callbacks import tasks
from callbacks.tasks import CallbackPolicy, CallbackRefused, OutcomeError, Refusal
from tests.forum.test_builtin_support import SECRETS, case_form

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026, a working day; the shipped windows: 09:00-12:00, 14:00-20:00.
ANSWERED_AT = datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


def own_extension(session) -> str:
    """A desk extension no other user holds (one active user per extension, migration 0011)."""
    return str(1001 + session.scalar(select(func.count()).select_from(User)))


def operator(session, name: str, role: Role = Role.OPERATOR) -> User:
    user = User(username=name, role=role, extension=own_extension(session), password_hash=hash_password("x" * 12))
    session.add(user)
    session.flush()
    return user


def a_case(session, by: User | None, **form):
    ensure_shipped_units(session)
    return file_case(session, {**case_form(), "department": "CITY-LJQ", **form}, user=by,
                     now=ANSWERED_AT - timedelta(days=1), zone=ZONE)


def an_answer(session, case, at: datetime = ANSWERED_AT, kind: str = "answered", text: str = "已安排清理") -> DomainEvent:
    event = CaseEvent(case_id=case.id, at=at, kind=kind, actor="forum", detail={"text": text, "unit": "CITY-LJQ"})
    session.add(event)
    session.flush()
    return DomainEvent(event.id, "case_answered", kind, case.id, case.number, at, event.detail)


def test_one_task_per_answer_owned_by_the_filer_and_due_inside_the_best_time(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        case = a_case(session, alice, best_time="afternoon")
        answer = an_answer(session, case)
        task = tasks.create_for_answer(session, answer, policy, ANSWERED_AT)
        assert tasks.create_for_answer(session, answer, policy, ANSWERED_AT) is task  # seen twice: one task
        assert (task.owner_id, task.phone, task.state) == (alice.id, case.caller_phone, CallbackState.SCHEDULED)
        assert task.due_at == datetime(2026, 12, 3, 14, 0, tzinfo=ZONE)  # the afternoon's first window
        assert session.scalars(select(CallbackTask)).all() == [task]


def test_a_follow_up_answer_makes_a_new_task_and_supersedes_the_waiting_one(db, policy):
    with db.session() as session:
        case = a_case(session, None, best_time="any")
        first = tasks.create_for_answer(session, an_answer(session, case), policy, ANSWERED_AT)
        later = ANSWERED_AT + timedelta(hours=1)
        second = tasks.create_for_answer(session, an_answer(session, case, later, "follow_up_answered"), policy, later)
        assert (first.state, first.outcome) == (CallbackState.DONE, CallbackOutcome.SUPERSEDED)
        assert second.state is CallbackState.DUE and second.id != first.id


def test_an_older_answer_handed_late_leaves_the_newer_answers_task_alone(db, policy):
    """A parked answer tried again after its case was answered anew (bridge.domain_events):
    the caller is to hear the newer answer, so the older makes no task and supersedes nothing."""
    with db.session() as session:
        case = a_case(session, None, best_time="any")
        older = an_answer(session, case)
        later = ANSWERED_AT + timedelta(hours=1)
        newer = tasks.create_for_answer(session, an_answer(session, case, later, "follow_up_answered"), policy, later)
        assert tasks.create_for_answer(session, older, policy, later) is None
        assert newer.state is CallbackState.DUE and newer.outcome is None
        assert session.scalars(select(CallbackTask)).all() == [newer]


def test_a_batch_of_answers_makes_what_one_at_a_time_makes_in_order(db, policy):
    """The consumer's batch (create_for_answers): the same answer twice is one task, a follow-up
    answer later in the batch supersedes the first one's task, no task without a wish or for a
    number not to call."""
    with db.session() as session:
        alice = operator(session, "alice")
        twice = a_case(session, alice, best_time="any")
        other = a_case(session, alice, best_time="afternoon")
        quiet = a_case(session, None, callback_wanted=False)
        blocked = a_case(session, None, caller_phone="137 0000 1111")
        tasks.forbid_number(session, blocked.caller_phone, task_id=None, by=None, note="", now=ANSWERED_AT)
        later = ANSWERED_AT + timedelta(hours=1)
        first = an_answer(session, twice)
        answers = [first, an_answer(session, other), an_answer(session, quiet), an_answer(session, blocked),
                   an_answer(session, twice, later, "follow_up_answered"), first]
        made = tasks.create_for_answers(session, answers, policy, later)
        assert [task is not None for task in made] == [True, True, False, False, True, True]
        assert made[5] is made[0] and (made[0].state, made[0].outcome) == (CallbackState.DONE, CallbackOutcome.SUPERSEDED)
        assert (made[1].case_id, made[1].state, made[1].due_at) == (other.id, CallbackState.SCHEDULED,
                                                                   datetime(2026, 12, 3, 14, 0, tzinfo=ZONE))
        assert (made[4].case_id, made[4].state, made[4].owner_id) == (twice.id, CallbackState.DUE, alice.id)
        stored = session.scalars(select(CallbackTask).order_by(CallbackTask.id)).all()
        assert [(t.answer_event_id, t.case_id) for t in stored] == [(answers[k].position, answers[k].case_id)
                                                                   for k in (0, 1, 4)]
        timeline = session.execute(select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.detail).where(
            CaseEvent.kind.in_((tasks.CALLBACK_SCHEDULED, tasks.CALLBACK_NOT_PLACED)))).all()
        assert sorted((case_id, kind, detail.get("task")) for case_id, kind, detail in timeline) == sorted(
            [(twice.id, tasks.CALLBACK_SCHEDULED, made[0].id), (other.id, tasks.CALLBACK_SCHEDULED, made[1].id),
             (blocked.id, tasks.CALLBACK_NOT_PLACED, None), (twice.id, tasks.CALLBACK_SCHEDULED, made[4].id)])
        assert tasks.create_for_answers(session, answers, policy, later + timedelta(minutes=1))[4] is made[4]


def test_no_task_without_a_wish_a_number_or_for_a_number_not_to_call(db, policy):
    with db.session() as session:
        quiet = a_case(session, None, callback_wanted=False)
        assert tasks.create_for_answer(session, an_answer(session, quiet), policy, ANSWERED_AT) is None
        case = a_case(session, None)
        tasks.forbid_number(session, case.caller_phone, task_id=None, by=None, note="", now=ANSWERED_AT)
        assert tasks.create_for_answer(session, an_answer(session, case), policy, ANSWERED_AT) is None
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).all()
        assert tasks.CALLBACK_NOT_PLACED in kinds


def test_an_answer_weeks_old_makes_no_task(db, policy):
    with db.session() as session:
        case = a_case(session, None)
        event = an_answer(session, case)
        assert tasks.create_for_answer(session, event, policy, ANSWERED_AT + timedelta(days=30)) is None


def due_task(session, policy, owner=None, **form):
    case = a_case(session, owner, best_time="any", **form)
    return tasks.create_for_answer(session, an_answer(session, case), policy, ANSWERED_AT)


def test_two_operators_pressing_call_at_once_place_one_attempt(db, policy):
    with db.session() as session:
        alice, bob = operator(session, "alice"), operator(session, "bob")
        task = due_task(session, policy)
        attempt, brief = tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, policy, dialler="asterisk")
        assert brief.answer_text == "已安排清理" and attempt.ended_at is None
        with pytest.raises(CallbackRefused) as refused:
            tasks.begin_attempt(session, task.id, bob, ANSWERED_AT, policy, dialler="asterisk")
        assert refused.value.refusal in (Refusal.ATTEMPT_LIVE, Refusal.HELD_BY_OTHER)
        assert len(task.attempts) == 1


def test_the_database_refuses_a_second_live_attempt_whatever_the_code_checked(db, policy):
    from sqlalchemy.exc import IntegrityError

    from bridge.db.models import CallbackAttempt

    with db.session() as session:
        task = due_task(session, policy)
        session.add(CallbackAttempt(task_id=task.id, idempotency_key="cb-a", dialler="asterisk", started_at=ANSWERED_AT))
        session.flush()
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(CallbackAttempt(task_id=task.id, idempotency_key="cb-b", dialler="asterisk",
                                        started_at=ANSWERED_AT))
            session.flush()


def test_no_call_outside_the_windows_or_to_a_number_not_to_call(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, policy, alice)
        night = datetime(2026, 12, 3, 22, 0, tzinfo=ZONE)
        with pytest.raises(CallbackRefused) as refused:
            tasks.begin_attempt(session, task.id, alice, night, policy, dialler="asterisk")
        assert refused.value.refusal is Refusal.OUTSIDE_WINDOWS
        assert refused.value.detail == datetime(2026, 12, 4, 9, 0, tzinfo=ZONE).astimezone(tasks.timezone.utc).isoformat()
        tasks.forbid_number(session, task.phone, task_id=None, by=alice, note="", now=ANSWERED_AT)
        with pytest.raises(CallbackRefused) as refused:
            tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, policy, dialler="asterisk")
        assert refused.value.refusal is Refusal.DO_NOT_CALL


def test_the_owners_turn_then_the_pool(db, policy):
    with db.session() as session:
        alice, bob = operator(session, "alice"), operator(session, "bob")
        open_session(session, alice, None, ANSWERED_AT - timedelta(hours=1))  # alice is at her desk
        task = due_task(session, policy, alice)
        with pytest.raises(CallbackRefused) as refused:
            tasks.take(session, task.id, bob, ANSWERED_AT, policy)
        assert refused.value.refusal is Refusal.OWNERS_TURN
        later = ANSWERED_AT + policy.owner_timeout
        assert tasks.take(session, task.id, bob, later, policy).held_by_id == bob.id
        with pytest.raises(CallbackRefused) as refused:
            tasks.take(session, task.id, alice, later, policy)
        assert refused.value.refusal is Refusal.HELD_BY_OTHER and refused.value.holder == "bob"


def test_a_signed_out_owners_task_is_the_pools_at_once_and_theirs_again_when_back(db, policy):
    """The owner's turn needs the owner signed in (bridge.presence): signed out, the pool has the
    task at once, not after owner_timeout; signed in again within the turn, it is theirs again."""
    with db.session() as session:
        alice, bob = operator(session, "alice"), operator(session, "bob")
        desk = open_session(session, alice, None, ANSWERED_AT - timedelta(hours=1))
        task = due_task(session, policy, alice)
        assert tasks.owner_signed_in(session, task, ANSWERED_AT)
        end_session(session, desk.token, ANSWERED_AT + timedelta(minutes=1))
        soon = ANSWERED_AT + timedelta(minutes=2)
        assert not tasks.owner_signed_in(session, task, soon)
        open_session(session, alice, None, soon)
        with pytest.raises(CallbackRefused) as refused:
            tasks.take(session, task.id, bob, soon + timedelta(minutes=1), policy)
        assert refused.value.refusal is Refusal.OWNERS_TURN
        end_session(session, session.scalars(select(DeskSession).where(DeskSession.ended_at.is_(None))).one().token,
                    soon + timedelta(minutes=2))
        assert tasks.take(session, task.id, bob, soon + timedelta(minutes=3), policy).held_by_id == bob.id


def test_busy_retries_on_its_ladder_and_the_last_attempt_gives_up_with_an_sms(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, policy, alice, sms_consent=True)
        now = ANSWERED_AT
        waits = []
        for _ in range(3):  # busy ladder 15m, 30m, 1h
            attempt, _ = tasks.begin_attempt(session, task.id, alice, now, policy, dialler="asterisk")
            session.commit()
            tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.BUSY, now, policy,
                                 settled_by="events")
            assert tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.NO_ANSWER, now,
                                        policy, settled_by="cel").result is CallbackAttemptResult.BUSY  # settled once
            waits.append(task.due_at - now)
            assert task.state is CallbackState.SCHEDULED
            now = task.due_at
        assert waits == [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1)]
        attempt, _ = tasks.begin_attempt(session, task.id, alice, now, policy, dialler="asterisk")
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.BUSY, now, policy,
                             settled_by="events")
        assert task.state is CallbackState.UNREACHABLE
        assert session.scalar(select(CallbackMessage).where(CallbackMessage.task_id == task.id)) is not None


def test_an_unknown_result_waits_for_a_person_and_is_never_retried(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, policy, alice)
        attempt, _ = tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, policy, dialler="asterisk")
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.UNKNOWN, ANSWERED_AT, policy,
                             settled_by="cel")
        assert (task.state, task.needs_check) == (CallbackState.DUE, CallbackCheck.ATTEMPT)
        with pytest.raises(CallbackRefused) as refused:
            tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, policy, dialler="asterisk")
        assert refused.value.refusal is Refusal.NEEDS_CHECK
        tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="informed", satisfaction=4)
        assert (task.state, task.needs_check, attempt.settled_by) == (CallbackState.DONE, None, "person")


def test_a_wrong_number_cause_stops_at_once(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, policy, alice)
        attempt, _ = tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, policy, dialler="asterisk")
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.FAILED, ANSWERED_AT, policy,
                             settled_by="events", hangup_cause=1)
        assert (task.state, task.needs_check) == (CallbackState.UNREACHABLE, CallbackCheck.NUMBER)
        tasks.correct_number(session, task.id, "13811112222", alice, ANSWERED_AT, policy)
        assert (task.state, task.phone) == (CallbackState.DUE, "+8613811112222")


def answered(session, policy, user, **form):
    task = due_task(session, policy, user, **form)
    attempt, _ = tasks.begin_attempt(session, task.id, user, ANSWERED_AT, policy, dialler="asterisk")
    tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.ANSWERED, ANSWERED_AT, policy,
                         settled_by="events", answered_at=ANSWERED_AT)
    return task


def test_outcomes_informed_with_a_grade_and_a_poor_grade_flags_the_case(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = answered(session, policy, alice)
        with pytest.raises(OutcomeError) as bad:
            tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="informed")
        assert bad.value.field == "satisfaction"
        assert task.state is CallbackState.IN_PROGRESS  # nothing stored
        tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="informed", satisfaction=2,
                             note="嫌慢")
        assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, 2)
        assert tasks.needs_review(task)


def test_a_follow_up_goes_to_the_forum_outbox_without_private_data(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = answered(session, policy, alice)
        with pytest.raises(OutcomeError) as bad:
            tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="follow_up",
                                 text="请回电 13912345678")
        assert bad.value.field == "text"
        tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="follow_up", text="何时清理完？")
        row = session.scalar(select(ForumOutbox).where(ForumOutbox.operation == "post_follow_up"))
        assert row.payload["text"].endswith("何时清理完？") and task.outcome is CallbackOutcome.FOLLOW_UP


def test_do_not_call_holds_on_a_second_case_until_lifted(db, policy):
    with db.session() as session:
        alice, boss = operator(session, "alice"), operator(session, "boss", Role.SUPERVISOR)
        task = answered(session, policy, alice)
        tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="do_not_call")
        second = a_case(session, alice)
        assert tasks.create_for_answer(session, an_answer(session, second), policy, ANSWERED_AT) is None
        assert tasks.lift_do_not_call(session, task.phone, by=boss, now=ANSWERED_AT)
        third = a_case(session, alice)
        assert tasks.create_for_answer(session, an_answer(session, third), policy, ANSWERED_AT) is not None


def test_voicemail_counts_as_an_attempt_and_is_retried(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = answered(session, policy, alice)
        tasks.record_outcome(session, task.id, alice, ANSWERED_AT, policy, outcome="voicemail")
        assert task.state is CallbackState.SCHEDULED and task.due_at == ANSWERED_AT + timedelta(hours=1)


def test_the_hang_up_of_an_answered_call_ends_its_attempt(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        task = answered(session, policy, alice)
        (attempt,) = task.attempts
        assert attempt.ended_at == ANSWERED_AT  # settled when the caller picked up
        tasks.call_ended(session, attempt.idempotency_key, ANSWERED_AT + timedelta(minutes=3))
        assert attempt.ended_at - attempt.answered_at == timedelta(minutes=3)
        assert task.state is CallbackState.IN_PROGRESS  # the outcome is still the operator's to record


def test_an_outcome_supersedes_the_task_of_the_answer_the_caller_was_just_told(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        case = a_case(session, alice, best_time="any")
        first = tasks.create_for_answer(session, an_answer(session, case), policy, ANSWERED_AT)
        later = ANSWERED_AT + timedelta(minutes=5)
        newer = an_answer(session, case, later, "follow_up_answered", text="已全部清理")  # its task not made yet
        attempt, brief = tasks.begin_attempt(session, first.id, alice, later, policy, dialler="asterisk")
        assert brief.newer_answer and brief.answer_text == "已全部清理"  # the operator tells the newest
        second = tasks.create_for_answer(session, newer, policy, later)  # made while the call is on
        assert second.state is CallbackState.DUE
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.ANSWERED, later, policy,
                             settled_by="events", answered_at=later)
        tasks.record_outcome(session, first.id, alice, later, policy, outcome="informed", satisfaction=5)
        assert (second.state, second.outcome) == (CallbackState.DONE, CallbackOutcome.SUPERSEDED)
