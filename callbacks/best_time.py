"""The caller's stated best time for a callback, as a code.

The case form offers a closed choice (上午 / 下午 / 晚上 / 任何时间); the database and the API
store only its code.  The labels shown to people live in the gettext catalogues, never here;
the hours each code means are configuration (``[callbacks.best_time_hours]``).

Cases filed before the choice existed hold free text ("工作日下午", "周三下午三点", ...).  It is
not parsed: guessing hours from prose would call people at times they never chose, so any
value that is not a known code reads as :attr:`BestTime.ANY` (the calling windows still apply).
"""
from __future__ import annotations

from enum import Enum


class BestTime(str, Enum):
    """When, within the calling windows, the caller prefers to be phoned."""

    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"
    ANY = "any"


def parse_best_time(stored: str | None) -> BestTime:
    """The code for a stored ``best_time``: a known code (case and surrounding space ignored),
    otherwise :attr:`BestTime.ANY` (missing, empty or old free text)."""
    if stored is None:
        return BestTime.ANY
    try:
        return BestTime(stored.strip().lower())
    except ValueError:
        return BestTime.ANY
