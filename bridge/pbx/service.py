"""The PBX link inside the daemon: AMI events -> call tracker -> call log rows and live events.

One AMI connection (``ami.AmiClient``) hands every event, in order, to the pure
``tracker.CallTracker``.  Each update is published at once to the rest of the
daemon (the operator desk's call pop) and queued for the call log, which one
writer task stores in small batches, so a burst of events never waits on the
database and rows are written in the order their calls changed.

After every (re)login the service lists the channels up now and adopts the
calls in progress, then starts recovering calls it missed from Asterisk's CEL/CDR
(``recovery.recover_batch``) in a task of its own: live events are handled meanwhile.

Stopping is bounded (``stop_flush_s``, well within the systemd unit's TimeoutStopSec):
with the database away the writer would retry for ever, so after the bound the service
logs the Linkedids it could not store (``calllog.unsaved_at_stop``) and goes.  Those calls
are recovered from Asterisk's CEL at the next start: the recovery cursor only moves in a
transaction that stored every call it passed, so it has not passed them.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone

import structlog

from bridge.capability import AmiListener, AmiSubscription
from bridge.config import Config
from bridge.db.engine import Database
from bridge.health import Health
from bridge.live import LiveEvent, LiveEvents
from bridge.pbx.agi import CaseStatusServer
from bridge.pbx.ami import AmiClient, AmiError
from bridge.pbx.answer_speech import AnswerSpeech
from bridge.pbx import subscription
from bridge.pbx.calllog import save_records, stored_view
from bridge.pbx.events import CallRecord, CallUpdate
from bridge.pbx.tracker import CallTracker
from bridge.site.clock import SiteClock

log = structlog.get_logger(__name__)

WRITE_BATCH = 500
# The call log's writer waits this long after an update before storing, so the several
# updates of a call (arrival, queue, ringing, answer, hang-up) usually become one write
# and one transaction serves many calls: per-update transactions were most of the
# daemon's CPU under load (docs/performance.md).  Live events are not delayed.  A stop
# stores what is queued; a crash loses at most this second's snapshots, and the calls
# they belong to are recovered from Asterisk's CDR at the next start.
WRITE_COALESCE_S = 1.0
MAX_QUEUED_VIEWS = 10_000
# How long a stop waits for the call log's queue to be stored: the whole daemon must stop
# within the systemd unit's TimeoutStopSec (20 s), the web server and forum link included.
STOP_FLUSH_S = 5.0
# Between two recovery runs while a backlog is worked off (each run takes at most
# recovery.DEFAULT_BATCH calls), and before a failed run is tried again.
RECOVERY_PAUSE_S = 0.2
RECOVERY_RETRY_S = 30.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PbxService:
    def __init__(self, config: Config, db: Database, health: Health, live: LiveEvents, *,
                 clock=_now, write_coalesce_s: float = WRITE_COALESCE_S,
                 stop_flush_s: float = STOP_FLUSH_S,
                 listeners: Iterable[AmiListener] = (), ami_subscription: AmiSubscription | None = None) -> None:
        """``listeners``: other capabilities' AMI listeners, given every event after the tracker;
        ``ami_subscription``: the events to keep (default: the installed capabilities' union)."""
        self.config = config
        self.write_coalesce_s = write_coalesce_s
        self.stop_flush_s = stop_flush_s
        self.db = db
        self.health = health
        self.live = live
        self.clock = clock
        pbx = config.pbx
        self.tracker = CallTracker(pbx.hotline_numbers, pbx.queue)
        wanted = ami_subscription or subscription.installed()
        self.ami = AmiClient.from_config(
            pbx.ami, config.secret(pbx.ami.secret_env),
            on_event=self._on_event, listeners=listeners, on_state=self._on_state, on_connected=self._on_connected,
            wanted_events=wanted.events, varset_prefixes=wanted.variables or None,
        )
        self.agi = CaseStatusServer(pbx.agi_host, pbx.agi_port, db, clock=SiteClock.of(config),
                                    speech=AnswerSpeech.of(config))
        self._writes: asyncio.Queue[tuple[CallRecord, str | None]] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._queued_views: dict[str, tuple] = {}  # Linkedid -> stored_view of its last queued snapshot
        self._storing: list[tuple[CallRecord, str | None]] = []  # the writer's batch under way
        self._recovering: asyncio.Task | None = None
        self._recovery_run: asyncio.Future | None = None   # the run under way, in a worker thread
        self._recover_again = False
        self.recovery = self._recovery()
        # Other capabilities' callables run after each AMI login, once the channels up are
        # adopted (e.g. callbacks settle the attempts the lost link left dialling).
        self.connected_hooks: list[Callable[[], Awaitable[None] | None]] = []

    def _recovery(self):
        from bridge.pbx.recovery import CdrRecovery

        pbx = self.config.pbx
        if pbx.cel_url:
            return CdrRecovery.from_urls(self.config.cel_database_url, self.config.cdr_database_url,
                                         pbx.hotline_numbers, pbx.queue,
                                         cel_table=pbx.cel_table, cdr_table=pbx.cdr_table)
        cdr_path = self._cdr_path()
        return CdrRecovery(cdr_path, pbx.hotline_numbers, pbx.queue) if cdr_path else None

    def _cdr_path(self) -> str | None:
        if self.config.pbx.cdr_path:
            return str(self.config.path(self.config.pbx.cdr_path))
        if self.config.sandbox.enabled:
            from bridge.pbx.sandbox import Sandbox

            return str(Sandbox(self.config).paths()["cdr_db"])
        return None

    async def start(self) -> None:
        self.health.set("pbx", "connecting")
        self._writer = asyncio.create_task(self._write_loop(), name="calllog-writer")
        await self.agi.start()
        await self.ami.start()

    async def stop(self) -> None:
        """Stop within about ``stop_flush_s`` (plus the AMI and AGI close), whatever the database does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_flush_s

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        if self._recovering is not None:
            self._recovering.cancel()
            # A run under way (in a worker thread, one transaction) may finish: it is short.
            if self._recovery_run is not None and not self._recovery_run.done():
                await asyncio.wait({self._recovery_run}, timeout=remaining())
        await self.ami.stop()
        await self.agi.stop()
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._writes.join(), remaining())
            except asyncio.TimeoutError:
                pass
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._report_unsaved()
        if self.recovery is not None:
            self.recovery.dispose()

    def _report_unsaved(self) -> None:
        unsaved = sorted({record.linkedid for record, _ in [*self._storing, *self._drain()]})
        if unsaved:
            log.error("calllog.unsaved_at_stop", linkedids=unsaved, calls=len(unsaved),
                      waited_s=self.stop_flush_s, recovered_from="asterisk cel at the next start")

    def _drain(self) -> list[tuple[CallRecord, str | None]]:
        items = []
        while not self._writes.empty():
            items.append(self._writes.get_nowait())
            self._writes.task_done()
        return items

    # ------------------------------------------------------------------ AMI side

    def _on_state(self, state: str) -> None:
        self.health.set("pbx", state, host=self.config.pbx.ami.host, port=self.config.pbx.ami.port)

    def _on_event(self, event: dict[str, str]) -> None:
        for update in self.tracker.feed(event, self.clock()):
            self._publish(update)

    async def _on_connected(self) -> None:
        try:
            response = await self.ami.send_action({"Action": "CoreShowChannels"}, expect_list=True)
        except AmiError as exc:
            log.warning("pbx.adoption_failed", error=str(exc))
        else:
            for update in self.tracker.adopt(response.events, self.clock()):
                self._publish(update)
        if self.recovery is not None:
            self.start_recovery()
        for hook in self.connected_hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one capability's bug never stops the link
                log.exception("pbx.connected_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)))

    def start_recovery(self) -> asyncio.Task:
        """Recover missed calls in a task of its own (once more after it, if one is running)."""
        if self._recovering is not None and not self._recovering.done():
            self._recover_again = True
        else:
            self._recovering = asyncio.create_task(self._recover_loop(), name="cel-recovery")
        return self._recovering

    async def _recover_loop(self) -> int:
        """Runs of at most recovery.DEFAULT_BATCH calls until nothing is left; returns how many
        calls were stored."""
        from bridge.pbx.recovery import recover_batch

        stored = 0
        while True:
            self._recover_again = False
            try:
                self._recovery_run = asyncio.ensure_future(
                    asyncio.to_thread(recover_batch, self.db, self.recovery, now=self.clock()))
                # Its outcome is read here, or by nobody once a stop cancelled this loop.
                self._recovery_run.add_done_callback(lambda run: run.cancelled() or run.exception())
                result = await asyncio.shield(self._recovery_run)
            except Exception as exc:  # Asterisk's tables or ours away: live logging goes on
                log.warning("pbx.recovery_failed", error=repr(exc), retry_in_s=RECOVERY_RETRY_S)
                await asyncio.sleep(RECOVERY_RETRY_S)
                continue
            stored += result.recovered
            if result.examined or result.recovered:
                log.info("pbx.recovery", examined=result.examined, recovered=result.recovered, more=result.more)
            if not (result.more or self._recover_again):
                return stored
            await asyncio.sleep(RECOVERY_PAUSE_S)

    def _publish(self, update: CallUpdate) -> None:
        record = update.record
        self.live.publish(LiveEvent("call", update.kind, {
            "linkedid": update.linkedid, "extension": update.extension,
            "caller_number": record.caller_number, "caller_name": record.caller_name,
            "arrived_at": record.arrived_at.isoformat() if record.arrived_at else None,
            # the pop's menu and queue times (bridge.pbx.waits)
            "queue_joined_at": record.queue_joined_at.isoformat() if record.queue_joined_at else None,
            "answered_at": record.answered_at.isoformat() if record.answered_at else None,
            "queue_wait_s": record.queue_wait_s,
        }))
        # Queue the snapshot for the call log unless nothing stored changed since the last.
        view = stored_view(record)
        if len(self._queued_views) > MAX_QUEUED_VIEWS:  # calls never seen ending: forget, write again
            self._queued_views.clear()
        if self._queued_views.get(update.linkedid) != view:
            self._queued_views[update.linkedid] = view
            self._writes.put_nowait((record, None))
        if record.ended:
            self._queued_views.pop(update.linkedid, None)

    # -------------------------------------------------------------- call log side

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._writes.get()]
            await asyncio.sleep(self.write_coalesce_s)
            while len(batch) < WRITE_BATCH and not self._writes.empty():
                batch.append(self._writes.get_nowait())
            self._storing = batch   # until stored: a stop cut short reports it
            try:
                await self._store(batch)
                self._storing = []
            finally:
                for _ in batch:
                    self._writes.task_done()

    async def _store(self, batch: list[tuple[CallRecord, str | None]]) -> None:
        # Only the newest snapshot of each call in a batch matters (per source).
        latest: dict[tuple[str, str | None], CallRecord] = {}
        for record, source in batch:
            latest.pop((record.linkedid, source), None)
            latest[(record.linkedid, source)] = record
        delay = 0.5
        while True:
            try:
                await self.db.run(self._store_sync, list(latest.items()))
                return
            except Exception as exc:  # the database is away: keep the rows, try again
                log.error("calllog.write_failed", error=repr(exc), rows=len(latest), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    def _store_sync(self, items) -> None:
        with self.db.session() as session:
            save_records(session, [(record, source) for (_, source), record in items], now=self.clock())
