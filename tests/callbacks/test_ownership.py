"""Owner -> pool: the filing operator's task until they let it wait, sign out or are disabled."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from callbacks.ownership import Owned, Owner, OwnerState, Pool, PoolEntry, PoolReason, holder, pool_order
from tests.callbacks.policy_site import at

TIMEOUT = timedelta(minutes=30)
ZHU = Owner(7, OwnerState.SIGNED_IN)


def holder_at(now, owner=ZHU, assigned="2026-03-10 09:00", due="2026-03-10 09:00"):
    return holder(owner, assigned_at=at(assigned), due_at=at(due), now=at(now), timeout=TIMEOUT)


def test_the_owner_holds_a_due_task_until_the_timeout():
    assert holder_at("2026-03-10 09:00") == Owned(7, at("2026-03-10 09:30"))
    assert holder_at("2026-03-10 09:29") == Owned(7, at("2026-03-10 09:30"))


def test_an_owner_who_does_not_act_in_time_loses_it_to_the_pool():
    assert holder_at("2026-03-10 09:30") == Pool(PoolReason.OWNER_TIMED_OUT)
    assert holder_at("2026-03-11 09:30") == Pool(PoolReason.OWNER_TIMED_OUT)


def test_the_turn_begins_when_the_task_is_due():
    # answered at night: the owner's 30 minutes start at 09:00, when callers may be phoned
    assert holder_at("2026-03-10 02:00", assigned="2026-03-09 23:00", due="2026-03-10 09:00") == \
        Owned(7, at("2026-03-10 09:30"))
    assert holder_at("2026-03-10 09:31", assigned="2026-03-09 23:00", due="2026-03-10 09:00") == \
        Pool(PoolReason.OWNER_TIMED_OUT)


def test_a_task_assigned_later_gives_a_fresh_turn():
    assert holder_at("2026-03-10 11:00", assigned="2026-03-10 10:45") == Owned(7, at("2026-03-10 11:15"))


def test_a_disabled_owner_loses_it_at_once():
    disabled = Owner(7, OwnerState.DISABLED)
    assert holder_at("2026-03-10 09:00", owner=disabled) == Pool(PoolReason.OWNER_DISABLED)
    assert holder_at("2026-03-10 02:00", owner=disabled, due="2026-03-10 09:00") == Pool(PoolReason.OWNER_DISABLED)


def test_a_signed_out_owner_loses_it_once_it_is_due():
    away = Owner(7, OwnerState.SIGNED_OUT)
    assert holder_at("2026-03-10 09:00", owner=away) == Pool(PoolReason.OWNER_SIGNED_OUT)
    assert holder_at("2026-03-10 08:00", owner=away, due="2026-03-10 09:00") == Owned(7, at("2026-03-10 09:30"))


def test_a_task_without_an_owner_is_the_pools():
    assert holder_at("2026-03-10 09:00", owner=None) == Pool(PoolReason.NO_OWNER)


def test_the_pool_is_worked_oldest_answer_first():
    entries = [PoolEntry(1, at("2026-03-10 09:00")), PoolEntry(2, at("2026-03-09 16:00")),
               PoolEntry(3, datetime(2026, 3, 9, 8, 0, tzinfo=timezone.utc)),  # 16:00 Beijing: a tie
               PoolEntry(4, at("2026-03-10 08:59"))]
    assert [e.task_id for e in pool_order(entries)] == [2, 3, 4, 1]


@given(st.sampled_from(list(OwnerState)), st.integers(min_value=-600, max_value=600),
       st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=120))
def test_once_in_the_pool_a_task_stays_there_as_time_goes_on(state, due_in, later, timeout):
    assigned = at("2026-03-10 09:00")
    due = assigned + timedelta(minutes=due_in)
    owner = Owner(7, state)
    now = assigned + timedelta(minutes=due_in // 2)

    def at_moment(moment):
        return holder(owner, assigned_at=assigned, due_at=due, now=moment, timeout=timedelta(minutes=timeout))

    first = at_moment(now)
    if isinstance(first, Pool):
        assert isinstance(at_moment(now + timedelta(minutes=later)), Pool)
    else:
        assert first.until == max(assigned, due) + timedelta(minutes=timeout) > now
