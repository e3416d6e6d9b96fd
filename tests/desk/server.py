"""The desk app under uvicorn on a free loopback port, in a background thread (for the browser and SSE)."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import uvicorn

from bridge.live import LiveEvent


class LiveServer:
    def __init__(self, app):
        self.app = app
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off", timeout_graceful_shutdown=1))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="desk-uvicorn", daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)

    def publish(self, event: LiveEvent) -> None:
        """Publish into app.state.live from the test thread, in the server's loop."""
        self.loop.call_soon_threadsafe(self.app.state.live.publish, event)

    def wait_subscribers(self, n: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.app.state.live.subscriber_count < n:
            assert time.monotonic() < deadline, "no SSE subscriber"
            time.sleep(0.05)


@contextlib.contextmanager
def served(app):
    """``app`` served on http://127.0.0.1:PORT (``.url``) for the ``with`` block."""
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()
