"""Retry ladders: one per result, up to the maximum, into the next opening; wrong numbers stop."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config import CALLBACK_RETRIED_RESULTS, CallbacksConfig, RetryLaddersConfig
from callbacks.best_time import BestTime
from callbacks.retry import (
    RETRIED,
    AttemptResult,
    CheckAttempt,
    CheckNumber,
    GiveUp,
    GiveUpReason,
    Retry,
    RetryPolicy,
    next_step,
)
from callbacks.windows import is_open
from tests.callbacks.policy_site import CAL, RETRY, WINDOWS, ZONE, Before2026Arrangement, at

R = AttemptResult
BUSY, NO_ANSWER, FAILED, VOICEMAIL = R.BUSY, R.NO_ANSWER, R.FAILED, R.VOICEMAIL
OPERATOR, UNKNOWN = R.OPERATOR_NO_ANSWER, R.UNKNOWN


def step(result, now, history=(), policy=RETRY, calendar=CAL, **kwargs):
    moment = at(now) if isinstance(now, str) else now
    return next_step(list(history), result, moment, policy=policy, windows=WINDOWS, calendar=calendar, **kwargs)


def retry_at(result, now, history=(), **kwargs) -> datetime:
    found = step(result, now, history, **kwargs)
    assert isinstance(found, Retry), found
    return found.at.astimezone(ZONE)


def test_the_shipped_ladders_are_read():
    assert RETRY.ladders[BUSY] == (timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1))
    assert RETRY.ladders[NO_ANSWER] == (timedelta(hours=1), timedelta(hours=4), "next_day")
    assert RETRY.ladders[VOICEMAIL] == RETRY.ladders[NO_ANSWER]
    assert RETRY.max_attempts == 5 and RETRY.check_number_causes == {1, 22, 28}


def test_the_policy_and_the_configuration_name_the_same_results():
    assert [r.value for r in RETRIED] == list(CALLBACK_RETRIED_RESULTS) == list(RetryLaddersConfig.model_fields)


def test_busy_climbs_its_ladder_then_gives_up():
    assert retry_at(BUSY, "2026-03-10 10:00") == at("2026-03-10 10:15")
    assert retry_at(BUSY, "2026-03-10 10:15", [BUSY]) == at("2026-03-10 10:45")
    assert retry_at(BUSY, "2026-03-10 10:45", [BUSY, BUSY]) == at("2026-03-10 11:45")
    assert step(BUSY, "2026-03-10 11:45", [BUSY, BUSY, BUSY]) == GiveUp(GiveUpReason.LADDER_EXHAUSTED, 4)


def test_no_answer_waits_hours_then_the_next_day():
    assert retry_at(NO_ANSWER, "2026-03-10 09:10") == at("2026-03-10 10:10")
    assert retry_at(NO_ANSWER, "2026-03-10 10:10", [NO_ANSWER]) == at("2026-03-10 14:10")
    # next_day: the next day's first opening, though 24 h later would be 14:10
    assert retry_at(NO_ANSWER, "2026-03-10 14:10", [NO_ANSWER, NO_ANSWER]) == at("2026-03-11 09:00")
    assert step(NO_ANSWER, "2026-03-11 09:00", [NO_ANSWER] * 3) == GiveUp(GiveUpReason.LADDER_EXHAUSTED, 4)


def test_each_result_counts_its_own_rung():
    # the first no_answer after two busy signals waits no_answer's first step
    assert retry_at(NO_ANSWER, "2026-03-10 10:00", [BUSY, BUSY]) == at("2026-03-10 11:00")
    assert retry_at(VOICEMAIL, "2026-03-10 10:00", [NO_ANSWER]) == at("2026-03-10 11:00")


def test_the_attempt_number_of_the_retry():
    assert step(BUSY, "2026-03-10 10:00").attempt == 2
    assert step(NO_ANSWER, "2026-03-10 10:00", [BUSY, OPERATOR, BUSY]).attempt == 4


@pytest.mark.parametrize(("result", "now", "history", "expected"), [
    (BUSY, "2026-03-10 11:50", [], "2026-03-10 14:00"),                 # 12:05 is lunch: the afternoon
    (NO_ANSWER, "2026-03-10 19:30", [], "2026-03-11 09:00"),            # 20:30 is night: next morning
    (NO_ANSWER, "2026-03-06 19:30", [], "2026-03-07 10:00"),            # Friday: Saturday's window
    (NO_ANSWER, "2026-02-14 19:30", [], "2026-02-24 09:00"),            # make-up Saturday: past Spring Festival
    (NO_ANSWER, "2026-02-13 14:00", [NO_ANSWER, NO_ANSWER], "2026-02-14 09:00"),  # next day is the make-up day
    (FAILED, "2026-03-10 19:45", [], "2026-03-11 09:00"),
])
def test_a_retry_outside_the_windows_moves_to_the_next_opening(result, now, history, expected):
    assert retry_at(result, now, history) == at(expected)


def test_the_retry_keeps_the_callers_best_time_and_not_before():
    assert retry_at(BUSY, "2026-03-10 10:00", best_time=BestTime.EVENING) == at("2026-03-10 18:00")
    assert retry_at(BUSY, "2026-03-10 19:50", best_time=BestTime.EVENING) == at("2026-03-11 18:00")
    assert retry_at(BUSY, "2026-03-10 10:00", not_before=date(2026, 3, 12)) == at("2026-03-12 09:00")


def test_max_attempts_gives_up_whatever_the_ladders_say():
    history = [BUSY, NO_ANSWER, BUSY, FAILED]
    assert step(VOICEMAIL, "2026-03-10 10:00", history) == GiveUp(GiveUpReason.MAX_ATTEMPTS, 5)
    small = RetryPolicy.of(CallbacksConfig(max_attempts=2))
    assert step(BUSY, "2026-03-10 10:00", [BUSY], policy=small) == GiveUp(GiveUpReason.MAX_ATTEMPTS, 2)


def test_operator_no_answer_is_not_an_attempt_on_the_caller():
    # due again at once, and no rung of any ladder used
    assert step(OPERATOR, "2026-03-10 10:00", [BUSY]) == Retry(at("2026-03-10 10:00"), 2)
    assert retry_at(OPERATOR, "2026-03-10 20:30") == at("2026-03-11 09:00")
    assert retry_at(BUSY, "2026-03-10 10:00", [OPERATOR] * 12) == at("2026-03-10 10:15")
    assert step(BUSY, "2026-03-10 10:00", [OPERATOR, BUSY, OPERATOR, NO_ANSWER]).attempt == 4
    assert step(BUSY, "2026-03-10 10:00", [OPERATOR, BUSY, OPERATOR, BUSY, NO_ANSWER, FAILED]) == \
        GiveUp(GiveUpReason.MAX_ATTEMPTS, 5)
    small = RetryPolicy.of(CallbacksConfig(max_attempts=1))
    assert isinstance(step(OPERATOR, "2026-03-10 10:00", [OPERATOR] * 5, policy=small), Retry)


@pytest.mark.parametrize("cause", [1, 22, 28])
def test_a_number_that_does_not_exist_stops_at_once(cause):
    assert step(FAILED, "2026-03-10 10:00", hangup_cause=cause) == CheckNumber(cause)
    assert step(NO_ANSWER, "2026-03-10 10:00", [BUSY], hangup_cause=cause) == CheckNumber(cause)


def test_other_causes_are_retried():
    assert isinstance(step(FAILED, "2026-03-10 10:00", hangup_cause=34), Retry)   # no circuit: congestion
    assert isinstance(step(BUSY, "2026-03-10 10:00", hangup_cause=17), Retry)     # user busy


def test_the_operators_leg_failing_says_nothing_about_the_callers_number():
    assert isinstance(step(OPERATOR, "2026-03-10 10:00", hangup_cause=1), Retry)


def test_an_unknown_result_goes_to_a_person_and_counts_afterwards():
    assert step(UNKNOWN, "2026-03-10 10:00") == CheckAttempt()
    assert step(BUSY, "2026-03-10 10:00", [UNKNOWN, UNKNOWN, BUSY, BUSY]) == GiveUp(GiveUpReason.MAX_ATTEMPTS, 5)


def test_an_answered_attempt_is_not_for_the_retry_policy():
    with pytest.raises(ValueError, match="outcome"):
        step(R.ANSWERED, "2026-03-10 10:00")


def test_no_opening_left_gives_up():
    from bridge.site.calendar import ChinaWorkingCalendar

    calendar = ChinaWorkingCalendar(extra_rest_days=[date(2026, 3, 10) + timedelta(days=n) for n in range(90)])
    assert step(BUSY, "2026-03-10 10:00", calendar=calendar) == GiveUp(GiveUpReason.NO_OPENING, 1)


def test_a_retry_on_a_day_the_calendar_does_not_cover_says_so():
    assert step(BUSY, "2026-03-10 10:00").calendar_covered is True
    found = step(BUSY, "2026-03-10 10:00", calendar=Before2026Arrangement())
    assert found == Retry(at("2026-03-10 10:15"), 2, calendar_covered=False)


# ------------------------------------------------------------------ properties

results = st.sampled_from([BUSY, NO_ANSWER, FAILED, VOICEMAIL, OPERATOR])


@settings(max_examples=150, deadline=None)
@given(st.lists(results, max_size=30),
       st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 1), timezones=st.just(ZONE)),
       st.sampled_from(list(BestTime)), st.integers(min_value=1, max_value=8))
def test_a_task_is_never_tried_more_than_max_attempts_and_always_in_the_windows(outcomes, start, best_time, max_attempts):
    policy = RetryPolicy.of(CallbacksConfig(max_attempts=max_attempts))
    history: list[AttemptResult] = []
    now = start
    for result in outcomes:
        found = next_step(history, result, now, best_time=best_time, policy=policy, windows=WINDOWS, calendar=CAL)
        history.append(result)
        counted = sum(r is not OPERATOR for r in history)
        if isinstance(found, GiveUp):
            assert found.attempts == counted <= max_attempts
            assert result is not OPERATOR
            return
        assert isinstance(found, Retry)
        assert found.attempt == counted + 1 <= max_attempts
        assert found.at >= now
        assert is_open(found.at, best_time=best_time, not_before=None, calendar=CAL, windows=WINDOWS)
        if result is OPERATOR:
            assert found.at == now or not is_open(now, best_time=best_time, not_before=None, calendar=CAL,
                                                  windows=WINDOWS)
        now = found.at + timedelta(minutes=2)  # the next try ends a little later
    assert sum(r is not OPERATOR for r in history) <= max_attempts
