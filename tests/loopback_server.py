"""An ASGI app under uvicorn on 127.0.0.1, in a thread of its own: the fakes of outside
services (Discourse, Twilio) that the real client libraries talk to over HTTP."""
from __future__ import annotations

import socket
import threading
import time

import uvicorn


class LoopbackServer:
    """Serves ``asgi_app()`` on 127.0.0.1; ``start()`` again after ``stop()`` keeps the port,
    so a client configured with ``base_url`` reaches the restarted server."""

    server_name = "the fake server"
    port: int | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def asgi_app(self):
        return self.app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port or 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.asgi_app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.server_name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
