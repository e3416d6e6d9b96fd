"""Travel in time as the host sees it: the host's zone is ``tz`` and every ``datetime.now``
of bridge's modules answers ``instant``.

No time-machine library is needed: bridge's modules call ``datetime.now`` through their
own module attribute ``datetime``, which this replaces for the duration of the block
(the system clock of the host's zone included: ``datetime.now()`` gives the naive local
time of ``tz``, as on a real host).
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import pytest


@contextlib.contextmanager
def host_clock(instant: datetime, tz: str = "UTC") -> Iterator[None]:
    """Within the block the host runs in zone ``tz`` (the TZ variable) and it is ``instant`` (aware)."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant.astimezone(tz) if tz is not None else instant.astimezone().replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.now()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", tz)
        time.tzset()
        for name, module in list(sys.modules.items()):
            if (name == "bridge" or name.startswith("bridge.")) and getattr(module, "datetime", None) is datetime:
                patch.setattr(module, "datetime", Frozen)
        try:
            yield
        finally:
            patch.undo()
            time.tzset()
