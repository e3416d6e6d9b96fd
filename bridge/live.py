"""Live events inside the daemon: the PBX and forum publish, pages (SSE) subscribe.

In-process fan-out over asyncio queues.  A slow subscriber loses its oldest
events rather than stalling the publisher: live views are refreshed from the
database, so a dropped live event is a late screen update, never lost data.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiveEvent:
    topic: str  # "call", "case", ...
    kind: str  # "ringing", "connected", "ended", "state_changed", ...
    data: dict[str, Any] = field(default_factory=dict)


class LiveEvents:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[LiveEvent]] = set()

    def publish(self, event: LiveEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
