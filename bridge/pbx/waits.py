"""How long a caller spent before an operator: in the menu (greeting and keys) and in the queue.  Pure.

Both come from the stored times: ``queue_wait_s`` is the tracker's QueueCallerJoin to the
answer (or to leaving the queue); the menu is what lies before it, from the arrival.  The
pop, the call lists and the calls API all use this one reckoning, so they agree.
"""
from __future__ import annotations

from datetime import datetime


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, round((later - earlier).total_seconds(), 3))


def menu_and_queue(arrived_at: datetime | None, queue_wait_s: float | None, answered_at: datetime | None,
                   ended_at: datetime | None, *, queue_joined_at: datetime | None = None,
                   now: datetime | None = None) -> tuple[float | None, float | None]:
    """(seconds in the menu, seconds in the queue); None where the times do not say.

    A call that never joined the queue spent all its time before an answer (or its end) in the
    menu; one still in the menu counts to ``now``."""
    if queue_joined_at is not None:
        queue = queue_wait_s if queue_wait_s is not None else _seconds(answered_at or ended_at or now,
                                                                         queue_joined_at)
        return _seconds(queue_joined_at, arrived_at), queue
    left = answered_at or ended_at
    if queue_wait_s is not None:
        before = _seconds(left, arrived_at)
        return (max(0.0, round(before - queue_wait_s, 3)) if before is not None else None), queue_wait_s
    return _seconds(left or now, arrived_at), None


def short_duration(seconds: float | None, gettext) -> str:
    """"14 秒" under a minute, "1:05" beyond (the desk's waits); "" when unknown."""
    if seconds is None:
        return ""
    whole = int(max(0.0, seconds) + 0.5)
    if whole < 60:
        return gettext("%(seconds)d s") % {"seconds": whole}
    minutes, rest = divmod(whole, 60)
    return f"{minutes}:{rest:02d}"


def waits_text(menu_s: float | None, queue_s: float | None, gettext) -> str:
    """"菜单 12 秒 · 排队 14 秒" (either part left out when unknown)."""
    parts = []
    if menu_s is not None:
        parts.append(gettext("menu %(time)s") % {"time": short_duration(menu_s, gettext)})
    if queue_s is not None:
        parts.append(gettext("queue %(time)s") % {"time": short_duration(queue_s, gettext)})
    return " · ".join(parts)
