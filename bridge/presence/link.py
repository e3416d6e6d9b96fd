"""The daemon's part of queue presence: the operator queue follows the desk sessions.

:class:`PresenceLink` (the link ``presence``) reconciles: it reads the desired members from the
sessions (:func:`bridge.presence.service.desired_members`), the actual ones from Asterisk
(AMI ``QueueStatus`` for ``[pbx] queue``, kept current between reads by the queue's events in a
:class:`bridge.presence.queue.QueueBoard`), and sends the difference (``QueueAdd`` /
``QueueRemove`` of dynamic members / ``QueuePause`` with the reason, :func:`bridge.presence.queue.plan`).

It runs:

* after every AMI login (daemon start, reconnect, Asterisk restart: Asterisk forgot its dynamic
  members), reading ``QueueStatus`` afresh;
* at once when a session changes in this process (sign-in, sign-out, pause, resume, a page back:
  live topic ``presence``), and when a callback attempt ends (topic ``callbacks``) or a member's
  device changes state (``QueueMemberStatus``): an automatic callback pause is lifted once the
  operator's attempt has a result and their phone is idle again;
* every :data:`SWEEP_S` seconds: the sweep ends expired sessions and those of users disabled
  (by the CLI, another process), sessions not seen for ``[desk] presence_timeout_s`` leave
  the queue, and ``QueueStatus`` is read again (a change made by hand on Asterisk is undone).

Its events are published on the live topic ``presence`` (kind ``queue``: the board changed), for
the supervisors' page.  With ``pbx.backend = "none"`` the sessions still work; nothing is sent.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from bridge.config import Config
from bridge.db.engine import Database
from bridge.db.models import utcnow
from bridge.live import LiveEvent, LiveEvents
from bridge.presence import service
from bridge.presence.queue import IDLE_STATES, QueueBoard, plan

log = structlog.get_logger(__name__)

LIVE_TOPIC = "presence"
SWEEP_S = 15.0
# Kinds of topic "presence" that change the sessions (the rest, "queue", are the board's own).
SESSION_KINDS = frozenset({"signed_in", "signed_out", "paused", "resumed", "back", "ended"})
CALLBACK_KINDS = frozenset({"attempt_ended", "attempt_answered", "changed"})


class PresenceLink:
    def __init__(self, db: Database, config: Config, live: LiveEvents, pbx=None, *,
                 clock: Callable[[], datetime] = utcnow, sweep_s: float = SWEEP_S) -> None:
        """``pbx``: the daemon's PBX link (its ``ami`` client, its ``connected_hooks``), or None."""
        self.db, self.live, self.pbx, self.clock, self.sweep_s = db, live, pbx, clock, sweep_s
        self.queue = config.pbx.queue
        self.timeout_s = float(config.desk.presence_timeout_s)
        self.board = QueueBoard(self.queue)
        self._wake = asyncio.Event()
        self._full = True   # read QueueStatus afresh at the next run
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._started = False
        if pbx is not None and hasattr(pbx, "connected_hooks"):
            pbx.connected_hooks.append(self.on_ami_login)

    # ------------------------------------------------------------------ link
    async def start(self) -> None:
        self._started = True
        self._tasks = [asyncio.create_task(self._loop(), name="presence"),
                       asyncio.create_task(self._listen(), name="presence-live")]

    async def stop(self) -> None:
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def request(self, *, full: bool = False) -> None:
        """Reconcile soon (``full``: read QueueStatus afresh)."""
        self._full = self._full or full
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_s)
            timed_out = not self._wake.is_set()
            self._wake.clear()
            try:
                await self.reconcile(full=self._full or timed_out)
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("presence.reconcile_failed")

    async def _listen(self) -> None:
        async with self.live.subscribe() as events:
            while True:
                event = await events.get()
                if (event.topic == LIVE_TOPIC and event.kind in SESSION_KINDS) or (
                        event.topic == "callbacks" and event.kind in CALLBACK_KINDS):
                    self.request()

    # ------------------------------------------------------------------- AMI
    def _client(self):
        client = getattr(self.pbx, "ami", None)
        return client if client is not None and client.is_up else None

    async def on_ami_login(self) -> None:
        """After each AMI login: Asterisk's members may be anything now (a restart forgot them)."""
        if self._started:
            self.board.forget()
            await self.reconcile(full=True)

    def on_ami_event(self, event: dict[str, str]) -> None:
        if self.board.feed(event, self.clock()):
            self.live.publish(LiveEvent(LIVE_TOPIC, "queue", {"event": event.get("Event")}))
            if event.get("Event") == "QueueMemberStatus":
                self.request()   # an automatic callback pause may end now

    # ------------------------------------------------------------- reconcile
    async def reconcile(self, *, full: bool = False) -> list[dict[str, str]]:
        """One run: sweep the sessions, lift finished callback pauses, then make Asterisk's queue
        what the sessions say.  Returns the actions sent."""
        async with self._lock:
            if full:
                self._full = False
            states = {interface: member.state for interface, member in self.board.members.items()}
            ended, desired = await self.db.run_in_session(self._sessions_step, self.clock(), states)
            for row in ended:
                self.live.publish(LiveEvent(LIVE_TOPIC, "ended", {"user_id": row}))
            client = self._client()
            if client is None:
                return []
            if full or not self.board.loaded:
                await self._read(client)
            actions = plan(self.queue, desired, self.board.members)
            for action in actions:
                await self._send(client, action)
            if actions:
                await self._read(client)
                self.live.publish(LiveEvent(LIVE_TOPIC, "queue", {"event": "reconciled"}))
            return actions

    def _sessions_step(self, session, now: datetime, states: dict[str, str]):
        ended = [row.user_id for row in service.sweep(session, now)]
        for row in service.callback_pauses(session, now):
            state = states.get(service.interface_of(row.extension)) if row.extension else None
            if not service.has_open_callback(session, row.user_id) and (state is None or state in IDLE_STATES):
                service.resume_after_callback(session, row.id)
        return ended, service.desired_members(session, now, timeout_s=self.timeout_s)

    async def _read(self, client) -> None:
        from bridge.pbx.ami import AmiError

        try:
            response = await client.send_action({"Action": "QueueStatus", "Queue": self.queue}, expect_list=True)
        except AmiError as exc:
            log.warning("presence.queue_status_failed", queue=self.queue, error=str(exc))
            return
        self.board.load(response.events, self.clock())

    async def _send(self, client, action: dict[str, str]) -> None:
        from bridge.pbx.ami import AmiError

        try:
            await client.send_action(action)
        except AmiError as exc:   # e.g. "already there" after a race: the next full read tells
            log.warning("presence.queue_action_failed", action=action["Action"], interface=action["Interface"],
                        error=str(exc))
            self._full = True
            return
        log.info("presence.queue_" + action["Action"].lower().removeprefix("queue"), queue=self.queue,
                 interface=action["Interface"], member=action.get("MemberName"), paused=action.get("Paused"),
                 reason=action.get("Reason"))

    # ------------------------------------------------------------- callbacks
    async def callback_started(self, user_id: int) -> None:
        """The operator ``user_id`` places a callback: paused (reason callback, automatic) before
        the call is sent; lifted when it is over (see the module docstring)."""
        if await self.db.run_in_session(service.pause_for_callback, user_id, self.clock()):
            self.live.publish(LiveEvent(LIVE_TOPIC, "queue", {"user_id": user_id}))
            await self.reconcile()
