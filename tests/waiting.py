"""Waiting for a condition in a test instead of sleeping a fixed time and hoping.

    row = wait_until(lambda: find_row(), timeout=5, what="the call's row")
    await wait_until_async(lambda: not client.is_up, timeout=5, what="the link to notice the drop")

The predicate is tried at once and then every ``interval`` seconds; the first truthy result is
returned.  When ``timeout`` passes first, AssertionError names what was awaited and the last
result seen.  A fixed sleep is still right where a test checks that something does NOT happen
within a time, or measures a rate over one.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_INTERVAL_S = 0.02


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"gave up waiting for {what} after {timeout} s (last seen: {last!r})")


def wait_until(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT_S,
               interval: float = DEFAULT_INTERVAL_S, what: str = "the condition") -> T:
    """Call ``predicate`` until it returns something truthy, and return that (sync code)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, result)
        time.sleep(interval)


async def wait_until_async(predicate: Callable[[], T | Awaitable[T]], *, timeout: float = DEFAULT_TIMEOUT_S,
                           interval: float = DEFAULT_INTERVAL_S, what: str = "the condition") -> T:
    """The same from the event loop, which runs meanwhile; ``predicate`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, result)
        await asyncio.sleep(interval)
