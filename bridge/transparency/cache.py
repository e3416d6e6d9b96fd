"""An in-process cache of computed figures, one entry per key for ``ttl_s`` seconds.

A crowd of readers of the public page costs one computation per period and minute: the first
reader after expiry computes, the others wait for that result (one lock per key) instead of each
querying the database the desks use."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry[0] < self.ttl_s:
            return True, entry[1]
        return False, None

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        fresh, value = self._fresh(key)
        if fresh:
            return value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            fresh, value = self._fresh(key)  # computed while this reader waited
            if fresh:
                return value
            value = await compute()
            self._entries = {k: v for k, v in self._entries.items() if self.clock() - v[0] < self.ttl_s}
            self._entries[key] = (self.clock(), value)
            return value
