"""The site's clock: the one source of "now", "today" and "this year", in the site's zone.

Stored times stay UTC instants (``bridge.db.models.utcnow``).  Whatever depends on the
local date asks this clock, never the host's zone: this year's case numbers, "today"'s
calendar check, the years of the dialplan include.  A host on UTC is eight hours behind
Beijing, so between 00:00 and 08:00 on 1 January its year is still last year's.

The pure cores take the time as an argument; the adapters hold a :class:`SiteClock` and
tests give it a fixed ``source``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timezone, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import Config


def midnight(day: date, zone: tzinfo) -> datetime:
    """The start of ``day`` in ``zone`` (the site's): where a day's half-open period begins."""
    return datetime.combine(day, time(0), tzinfo=zone)


def system_now() -> datetime:
    """The current instant (aware, UTC)."""
    return datetime.now(timezone.utc)


class SiteClock:
    """Now, today and this year in ``zone``; ``source`` gives the current instant (aware)."""

    def __init__(self, zone: tzinfo, source: Callable[[], datetime] = system_now) -> None:
        self.zone = zone
        self.source = source

    @classmethod
    def of(cls, config: Config, source: Callable[[], datetime] = system_now) -> SiteClock:
        """The clock of the site ``config`` describes (``[site] timezone``)."""
        return cls(config.site.zone, source)

    def now(self) -> datetime:
        moment = self.source()
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"the clock's source must give aware times, got {moment!r}")
        return moment.astimezone(self.zone)

    def today(self) -> date:
        return self.now().date()

    def this_year(self) -> int:
        return self.now().year

    def __call__(self) -> datetime:
        """The clock serves where a ``clock`` callable is expected (it gives :meth:`now`)."""
        return self.now()
