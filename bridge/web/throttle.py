"""Sign-in throttling, one per app, shared by every sign-in form (the desk's, the spokespeople's).

Failures are counted per username and per client address in a sliding window (in memory, per
process); past the limit, sign-in is refused without checking the password until the lockout ends.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class SignInThrottle:
    """Counts failed sign-ins per key ("user:NAME", "ip:ADDR"); locks a key out past its limit.

    ``limits`` maps a key's kind to (failures allowed within ``window_s``); the
    failure that reaches the limit locks the key for ``lockout_s`` seconds.
    """

    def __init__(self, *, user_limit: int = 5, ip_limit: int = 20, window_s: float = 300.0,
                 lockout_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.limits = {"user": user_limit, "ip": ip_limit}
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._counters: dict[str, _Counter] = {}

    @staticmethod
    def keys(username: str, ip: str) -> list[str]:
        return [f"user:{username.strip().lower()}", f"ip:{ip}"]

    def locked_until(self, keys: list[str]) -> float | None:
        """The time (clock seconds) when the latest lockout among ``keys`` ends, or None."""
        now = self.clock()
        ends = [c.locked_until for k in keys if (c := self._counters.get(k)) and c.locked_until > now]
        return max(ends) if ends else None

    def failure(self, keys: list[str]) -> float | None:
        """Record a failure for every key; return when the (new) lockout ends, if one began."""
        now = self.clock()
        for key in keys:
            counter = self._counters.setdefault(key, _Counter())
            counter.failures.append(now)
            while counter.failures and counter.failures[0] <= now - self.window_s:
                counter.failures.popleft()
            if len(counter.failures) >= self.limits[key.split(":", 1)[0]]:
                counter.locked_until = now + self.lockout_s
                counter.failures.clear()
        self._prune(now)
        return self.locked_until(keys)

    def success(self, username: str) -> None:
        """A good sign-in clears the username's failures (not the address's)."""
        self._counters.pop(self.keys(username, "")[0], None)

    def _prune(self, now: float) -> None:
        if len(self._counters) < 10_000:
            return
        for key in [k for k, c in self._counters.items()
                    if c.locked_until <= now and (not c.failures or c.failures[-1] <= now - self.window_s)]:
            del self._counters[key]


def sign_in_throttle(app: FastAPI) -> SignInThrottle:
    """The app's throttle (``app.state.desk_throttle``, the name from when only the desk had one;
    tests replace it to set the clock)."""
    throttle = getattr(app.state, "desk_throttle", None)
    if throttle is None:
        throttle = app.state.desk_throttle = SignInThrottle()
    return throttle


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


__all__ = ["SignInThrottle", "client_ip", "sign_in_throttle"]
