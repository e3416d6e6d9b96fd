"""The tests' wait helper (tests/waiting.py): returns the first truthy result, fails naming
what it waited for, and lets the event loop run while it waits."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.waiting import wait_until, wait_until_async


def test_returns_the_first_truthy_result():
    tries = iter([None, 0, [], ["row"]])
    assert wait_until(lambda: next(tries), timeout=5, interval=0) == ["row"]


def test_fails_after_the_timeout_naming_what_and_the_last_result():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"gave up waiting for the row after 0.1 s \(last seen: \[\]\)"):
        wait_until(lambda: [], timeout=0.1, what="the row")
    assert 0.1 <= time.monotonic() - started < 2


async def test_the_async_wait_lets_the_loop_run_and_takes_coroutine_predicates():
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, done.set)
    assert await wait_until_async(done.is_set, timeout=5) is True

    async def ready():
        return "up" if done.is_set() else ""
    assert await wait_until_async(ready, timeout=5) == "up"
    with pytest.raises(AssertionError, match="gave up waiting for the link after 0.05 s"):
        await wait_until_async(lambda: False, timeout=0.05, what="the link")
