"""A small AMI server on 127.0.0.1 for client tests: real TCP, the AMI text protocol.

It greets with ``Asterisk Call Manager/9.0.0``, answers Login (checking the secret),
Ping, Logoff, CoreShowChannels and any action with a handler, and records every action
it receives so tests can count them.  Tests drive it: push events (optionally split
into separate TCP writes at chosen byte offsets), go silent, hold answers to chosen
actions, drop connections.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def encode(fields: Mapping[str, Any]) -> bytes:
    lines = []
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {v}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def parse(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value[1:] if value.startswith(" ") else value
    return out


@dataclass(eq=False)
class Connection:
    number: int
    writer: asyncio.StreamWriter
    logged_in: bool = False

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        await self.writer.drain()


Handler = Callable[[Connection, dict[str, str]], Awaitable[list[Mapping[str, Any]] | None]]


@dataclass(eq=False)
class FakeAmi:
    username: str = "hotline-bridge"
    secret: str = "s3cret"
    # Stop answering anything (a half-open, silent link).
    silent: bool = False
    # Action names (lower case) that get no answer.
    hold: set[str] = field(default_factory=set)
    handlers: dict[str, Handler] = field(default_factory=dict)
    channels: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = 0
        self.connections: list[Connection] = []
        self.received: list[tuple[int, dict[str, str]]] = []
        self.login_attempts: list[float] = []
        self.logins = 0
        self._login_cond = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- control

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass

    def actions(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.received if a.get("Action", "").lower() == name.lower()]

    @property
    def live(self) -> list[Connection]:
        return [c for c in self.connections if c.logged_in and not c.writer.is_closing()]

    async def wait_logins(self, count: int, timeout: float = 5.0) -> None:
        async with self._login_cond:
            await asyncio.wait_for(self._login_cond.wait_for(lambda: self.logins >= count), timeout)

    async def send_event(self, fields: Mapping[str, Any]) -> None:
        for conn in self.live:
            await conn.send(encode(fields))

    async def send_split(self, data: bytes, cuts: list[int], pause: float = 0.05) -> None:
        """Send ``data`` as separate TCP writes cut at byte offsets ``cuts``."""
        bounds = [0, *cuts, len(data)]
        for conn in self.live:
            for start, end in zip(bounds, bounds[1:]):
                await conn.send(data[start:end])
                await asyncio.sleep(pause)

    async def drop_all(self) -> None:
        for conn in self.connections:
            if not conn.writer.is_closing():
                conn.writer.transport.abort()

    # ----------------------------------------------------------------- server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = Connection(len(self.connections), writer)
        self.connections.append(conn)
        buffer = b""
        try:
            await conn.send(BANNER)
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    block, buffer = buffer.split(b"\r\n\r\n", 1)
                    action = parse(block.decode("utf-8", "replace"))
                    self.received.append((conn.number, action))
                    await self._answer(conn, action)
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    async def _answer(self, conn: Connection, action: dict[str, str]) -> None:
        name = action.get("Action", "").lower()
        action_id = action.get("ActionID", "")
        if name == "login":
            self.login_attempts.append(time.monotonic())
        if self.silent or name in self.hold:
            return
        base = {"Response": "Success", "ActionID": action_id}
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                conn.logged_in = True
                await conn.send(encode({**base, "Message": "Authentication accepted"}))
                await conn.send(encode({"Event": "FullyBooted", "Privilege": "system,all",
                                        "Uptime": "12", "LastReload": "12", "Status": "Fully Booted"}))
                async with self._login_cond:
                    self.logins += 1
                    self._login_cond.notify_all()
            else:
                await conn.send(encode({"Response": "Error", "ActionID": action_id,
                                        "Message": "Authentication failed"}))
            return
        if not conn.logged_in:
            await conn.send(encode({"Response": "Error", "ActionID": action_id,
                                    "Message": "Permission denied"}))
            return
        if name in self.handlers:
            messages = await self.handlers[name](conn, action)
            for message in messages or []:
                await conn.send(encode({**message, "ActionID": action_id}))
            return
        if name == "ping":
            await conn.send(encode({**base, "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}))
        elif name == "logoff":
            await conn.send(encode({"Response": "Goodbye", "ActionID": action_id,
                                    "Message": "Thanks for all the fish."}))
            conn.writer.close()
        elif name == "coreshowchannels":
            await conn.send(encode({**base, "EventList": "start", "Message": "Channels will follow"}))
            for channel in self.channels:
                await conn.send(encode({"Event": "CoreShowChannel", "ActionID": action_id, **channel}))
            await conn.send(encode({"Event": "CoreShowChannelsComplete", "ActionID": action_id,
                                    "EventList": "Complete", "ListItems": str(len(self.channels))}))
        elif name == "originate":
            await conn.send(encode({**base, "Message": "Originate successfully queued"}))
        else:
            await conn.send(encode({"Response": "Error", "ActionID": action_id,
                                    "Message": "Invalid/unknown command"}))
