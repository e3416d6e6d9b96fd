"""The PBX link inside the daemon: AMI events -> call tracker -> call log rows and live events.

One AMI connection (``ami.AmiClient``) hands every event, in order, to the pure
``tracker.CallTracker``.  Each update is published at once to the rest of the
daemon (the operator desk's call pop) and queued for the call log, which one
writer task stores in small batches, so a burst of events never waits on the
database and rows are written in the order their calls changed.

After every (re)login the service lists the channels up now and adopts the
calls in progress, then recovers calls it missed from Asterisk's CDR file.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timezone

import structlog

from bridge.capability import AmiListener, AmiSubscription
from bridge.config import Config
from bridge.db.engine import Database
from bridge.health import Health
from bridge.live import LiveEvent, LiveEvents
from bridge.pbx.agi import CaseStatusServer
from bridge.pbx.ami import AmiClient, AmiError
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


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PbxService:
    def __init__(self, config: Config, db: Database, health: Health, live: LiveEvents, *,
                 clock=_now, write_coalesce_s: float = WRITE_COALESCE_S,
                 listeners: Iterable[AmiListener] = (), ami_subscription: AmiSubscription | None = None) -> None:
        """``listeners``: other capabilities' AMI listeners, given every event after the tracker;
        ``ami_subscription``: the events to keep (default: the installed capabilities' union)."""
        self.config = config
        self.write_coalesce_s = write_coalesce_s
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
        self.agi = CaseStatusServer(pbx.agi_host, pbx.agi_port, db, clock=SiteClock.of(config))
        self._writes: asyncio.Queue[tuple[CallRecord, str | None]] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._queued_views: dict[str, tuple] = {}  # Linkedid -> stored_view of its last queued snapshot
        self.recovery = None
        cdr_path = self._cdr_path()
        if cdr_path:
            from bridge.pbx.recovery import CdrRecovery

            self.recovery = CdrRecovery(cdr_path, pbx.hotline_numbers)

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
        await self.ami.stop()
        await self.agi.stop()
        if self._writer is not None:
            await self._writes.join()  # every queued row is stored before we go
            self._writer.cancel()

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
            await self.recover_missed_calls()

    async def recover_missed_calls(self) -> int:
        """Store calls from Asterisk's CDR that the live log lacks; returns how many records."""
        try:
            records = await asyncio.to_thread(self.recovery.records)
        except Exception as exc:  # an unreadable CDR file must not stop live logging
            log.warning("pbx.recovery_failed", error=repr(exc))
            return 0
        open_ids = {r.linkedid for r in self.tracker.open_calls()}
        fresh = [r for r in records if r.linkedid not in open_ids]
        for record in fresh:
            self._writes.put_nowait((record, "recovered"))
        log.info("pbx.recovery", records=len(fresh))
        return len(fresh)

    def _publish(self, update: CallUpdate) -> None:
        record = update.record
        self.live.publish(LiveEvent("call", update.kind, {
            "linkedid": update.linkedid, "extension": update.extension,
            "caller_number": record.caller_number, "caller_name": record.caller_name,
            "arrived_at": record.arrived_at.isoformat() if record.arrived_at else None,
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
            try:
                await self._store(batch)
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
