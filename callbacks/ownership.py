"""Who may work a callback task: its owner, or the shared pool any operator may take.

The owner is the operator who filed the case (VICIdial's USERONLY).  Their turn begins when
the task is due (or when it was assigned to them, if later) and lasts
``[callbacks] owner_timeout_minutes``; a task they have not acted on by then belongs to the
pool (ANYONE).  A disabled owner's task is in the pool at once; a signed-out owner's as soon
as their turn has begun (an answer that arrives at night stays theirs until it is due).  A
task without an owner (a missed call) is in the pool.  :func:`holder` answers for the moment
given; a task taken from the pool is held by its taker, outside this rule.

The pool is worked oldest first: by how long the caller has waited since the answer (or
since the missed call), then by task id (:func:`pool_order`).

Pure: ``now`` is an argument.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class OwnerState(str, Enum):
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Owner:
    user_id: int
    state: OwnerState


@dataclass(frozen=True)
class Owned:
    """The owner's task until ``until``, when it goes to the pool unless they act."""

    user_id: int
    until: datetime


class PoolReason(str, Enum):
    NO_OWNER = "no_owner"
    OWNER_DISABLED = "owner_disabled"
    OWNER_SIGNED_OUT = "owner_signed_out"
    OWNER_TIMED_OUT = "owner_timed_out"


@dataclass(frozen=True)
class Pool:
    """In the shared pool, for ``reason``."""

    reason: PoolReason


def holder(owner: Owner | None, *, assigned_at: datetime, due_at: datetime, now: datetime,
           timeout: timedelta) -> Owned | Pool:
    """Whether the task is its owner's or the pool's at ``now`` (all moments aware)."""
    if owner is None:
        return Pool(PoolReason.NO_OWNER)
    if owner.state is OwnerState.DISABLED:
        return Pool(PoolReason.OWNER_DISABLED)
    turn_begins = max(assigned_at, due_at)
    if now >= turn_begins and owner.state is OwnerState.SIGNED_OUT:
        return Pool(PoolReason.OWNER_SIGNED_OUT)
    until = turn_begins + timeout
    if now >= until:
        return Pool(PoolReason.OWNER_TIMED_OUT)
    return Owned(owner.user_id, until)


@dataclass(frozen=True)
class PoolEntry:
    task_id: int
    # The answer the caller is waiting to hear (or the missed call).
    waiting_since: datetime


def pool_order(entries: Iterable[PoolEntry]) -> list[PoolEntry]:
    """The pool, the caller who has waited longest first (ties: the older task first)."""
    return sorted(entries, key=lambda e: (e.waiting_since, e.task_id))
