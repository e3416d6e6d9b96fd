"""What follows an attempt that did not reach the caller: retry when, give up, or ask a person.

:func:`next_step` takes the results of the task's earlier attempts, the result that just
came in and the moment it came in, and answers with one of:

* :class:`Retry` ``(at)``: due again at ``at``.  ``busy``, ``no_answer``, ``failed`` and
  ``voicemail`` each have their ladder (``[callbacks.retry]``): the n-th attempt with that
  result waits the ladder's n-th step (``next_day``: the first opening of a later day), and
  ``at`` is the first opening (:func:`callbacks.windows.next_opening`) from there, so a retry
  that falls at night, on a holiday or outside the caller's best time moves to the next one.
  ``operator_no_answer`` (the operator's own phone did not answer) is not an attempt on the
  caller: due again at once, nothing counted.
* :class:`GiveUp` ``(reason)``: ``max_attempts`` attempts on the caller made
  (``[callbacks] max_attempts``), the result's ladder has no step left, or no opening
  within :data:`callbacks.windows.SEARCH_DAYS`.  (Then the SMS fallback and ``unreachable``.)
* :class:`CheckNumber`: Asterisk's hangup cause says the number itself is wrong
  (``[callbacks] check_number_causes``: 1 unallocated number, ...): stop at once, an operator
  checks the number.
* :class:`CheckAttempt`: the result is ``unknown`` (lost with the PBX link, or the daemon died
  mid-call): never retried silently, a person settles it.

Every attempt on the caller counts towards ``max_attempts``, ``unknown`` ones too (the
caller's phone may have rung); only ``operator_no_answer`` does not.  An ``answered``
attempt is settled by the operator's outcome, not here; the outcome ``voicemail`` (an
answering machine or someone else picked up) comes in as :attr:`AttemptResult.VOICEMAIL`.

Pure: ``now`` is an argument.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Literal

from bridge.config import CALLBACK_RETRIED_RESULTS, LADDER_NEXT_DAY, CallbacksConfig, ladder_step_minutes
from bridge.site.calendar import ChinaWorkingCalendar
from callbacks.best_time import BestTime
from callbacks.days import covered
from callbacks.windows import CallingWindows, next_opening, start_of_next_day


class AttemptResult(str, Enum):
    """How an attempt ended, as far as retrying is concerned."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    OPERATOR_NO_ANSWER = "operator_no_answer"
    UNKNOWN = "unknown"

    @property
    def counts(self) -> bool:
        """Whether it was an attempt on the caller (towards ``max_attempts``)."""
        return self is not AttemptResult.OPERATOR_NO_ANSWER


RETRIED = tuple(AttemptResult(name) for name in CALLBACK_RETRIED_RESULTS)
NextDay = Literal["next_day"]
LadderStep = timedelta | NextDay


class GiveUpReason(str, Enum):
    MAX_ATTEMPTS = "max_attempts"
    LADDER_EXHAUSTED = "ladder_exhausted"
    NO_OPENING = "no_opening"


@dataclass(frozen=True)
class Retry:
    """Due again at ``at`` (UTC, open); it will be attempt number ``attempt`` on the caller.
    ``calendar_covered`` is False when ``at``'s day was judged without the year's
    arrangement (:func:`callbacks.days.covered`): worth a warning in the log."""

    at: datetime
    attempt: int
    calendar_covered: bool = True


@dataclass(frozen=True)
class GiveUp:
    """No further attempt; ``attempts`` were made on the caller."""

    reason: GiveUpReason
    attempts: int


@dataclass(frozen=True)
class CheckNumber:
    """The number looks wrong (Asterisk's ``hangup_cause``): an operator checks it."""

    hangup_cause: int


@dataclass(frozen=True)
class CheckAttempt:
    """The attempt's result is unknown: a person settles it before anything else happens."""


Step = Retry | GiveUp | CheckNumber | CheckAttempt


@dataclass(frozen=True)
class RetryPolicy:
    """The ladders, the maximum of attempts and the causes that mean a wrong number."""

    ladders: Mapping[AttemptResult, Sequence[LadderStep]]
    max_attempts: int
    check_number_causes: frozenset[int]

    @classmethod
    def of(cls, config: CallbacksConfig) -> RetryPolicy:
        return cls(
            ladders={result: tuple(_step(s) for s in getattr(config.retry, result.value)) for result in RETRIED},
            max_attempts=config.max_attempts,
            check_number_causes=frozenset(config.check_number_causes),
        )


def next_step(history: Sequence[AttemptResult], result: AttemptResult, now: datetime, *,
              hangup_cause: int | None = None, best_time: BestTime = BestTime.ANY,
              not_before: date | None = None, policy: RetryPolicy, windows: CallingWindows,
              calendar: ChinaWorkingCalendar) -> Step:
    """What follows ``result`` (of the attempt that ended at ``now``), given the results of
    the task's earlier attempts, oldest first (``history``, without this one)."""
    if result is AttemptResult.ANSWERED:
        raise ValueError("an answered attempt is settled by the operator's outcome, not retried "
                         "(the outcome voicemail: pass AttemptResult.VOICEMAIL)")
    if result is AttemptResult.UNKNOWN:
        return CheckAttempt()
    # (The operator's own leg failing says nothing about the caller's number.)
    if hangup_cause in policy.check_number_causes and result is not AttemptResult.OPERATOR_NO_ANSWER:
        return CheckNumber(hangup_cause)
    attempts = sum(r.counts for r in (*history, result))
    if result is AttemptResult.OPERATOR_NO_ANSWER:
        earliest = now
    else:
        if attempts >= policy.max_attempts:
            return GiveUp(GiveUpReason.MAX_ATTEMPTS, attempts)
        ladder = policy.ladders[result]
        same = sum(r is result for r in history) + 1
        if same > len(ladder):
            return GiveUp(GiveUpReason.LADDER_EXHAUSTED, attempts)
        earliest = _after_step(now, ladder[same - 1], windows)
    at = next_opening(earliest, best_time=best_time, not_before=not_before, calendar=calendar, windows=windows)
    if at is None:
        return GiveUp(GiveUpReason.NO_OPENING, attempts)
    return Retry(at, attempts + 1, covered(at.astimezone(windows.zone).date(), calendar))


def _step(text: str) -> LadderStep:
    return LADDER_NEXT_DAY if text == LADDER_NEXT_DAY else timedelta(minutes=ladder_step_minutes(text))


def _after_step(now: datetime, step: LadderStep, windows: CallingWindows) -> datetime:
    return start_of_next_day(now, windows.zone) if step == LADDER_NEXT_DAY else now + step
