"""The daemon: one asyncio process holding the web server, the scheduler, and the
installed capabilities' links (PBX, forum, ...).

The daemon names no capability: it loops over those installed (bridge/capability.py),
in their order.  Start order: the database (each capability's ``prepare``: migrate,
units, first admin) -> scheduler -> each capability's links (PBX, then forum) -> the
domain-event publisher (catch-up) -> web server.  Stop order is the reverse, so no part
is left writing into a closed database: the web server stops taking requests and
finishes those under way, the publisher and the links stop, the scheduler finishes
running jobs, and only then is the database released.  SIGTERM and SIGINT both stop
cleanly.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from typing import Awaitable, Callable

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bridge.capability import Capability, Link, Runtime, StartError, load_capabilities
from bridge.config import Config
from bridge.db.engine import Database
from bridge.domain_events import DomainEvents
from bridge.health import UP, Health, down
from bridge.live import LiveEvents

log = structlog.get_logger(__name__)


# The daemon cannot start; the message says what to fix (raised by a capability's prepare, too).
DaemonError = StartError

# The daemon's own parts' health components (the capabilities declare theirs).
SCHEDULER = "scheduler"


class _QuietSignalsServer(uvicorn.Server):
    # The daemon owns signal handling; uvicorn must not install (and later re-raise) its own.
    @contextlib.contextmanager
    def capture_signals(self):
        yield


def prepare_database(runtime: Runtime) -> None:
    """Each capability's ``prepare``, in order (schema, reference data, first admin)."""
    for capability in runtime.capabilities:
        capability.prepare(runtime)


class Daemon:
    def __init__(self, config: Config, *, announce: Callable[[str], None] = print,
                 capabilities: tuple[Capability, ...] | None = None) -> None:
        self.config = config
        self.announce = announce
        self.capabilities = load_capabilities() if capabilities is None else capabilities
        components = [name for capability in self.capabilities for name in capability.health_components]
        self.health = Health([*components, SCHEDULER])
        self.live = LiveEvents()
        self.db = Database(config.database_url)
        self.scheduler = AsyncIOScheduler(timezone=config.site.zone)
        self.events = DomainEvents(self.db, health=self.health)
        self.runtime = Runtime(config, self.db, self.health, self.live, capabilities=self.capabilities,
                               scheduler=self.scheduler, events=self.events, announce=announce)
        self._stop = asyncio.Event()

    @property
    def links(self) -> dict[str, Link]:
        return self.runtime.links

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            self._stop.set()  # first: nothing (not even a failing log write) may keep us from stopping
            log.info("daemon.stopping", reason=reason)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        try:
            await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _run(self) -> None:
        listener = self._listen()
        try:
            await self.db.run(prepare_database, self.runtime)
        except BaseException:
            listener.close()
            raise

        self.scheduler.start()
        self.health.set(SCHEDULER, UP)
        self.check_calendar()
        self.scheduler.add_job(self.check_calendar, "cron", hour=0, minute=5, id="calendar-coverage")

        self._build_links()
        started: list[Link] = []
        try:
            for name, link in self.links.items():
                await link.start()
                started.append(link)
        except OSError as exc:  # a port taken, a folder missing: say what to fix, leave nothing running
            for link in reversed(started):
                await _quietly(link.stop())
            self.scheduler.shutdown(wait=True)
            listener.close()
            await self.db.run(self.db.dispose)
            raise DaemonError(exc.strerror or str(exc)) from None
        for capability in self.capabilities:
            for consumer in capability.consumers(self.runtime):
                self.events.register(consumer)
        await self.events.start()  # catch-up: what was committed while no daemon delivered it

        server = self._web_server()
        web_task = asyncio.create_task(server.serve(sockets=[listener]), name="web")
        stop_task = asyncio.create_task(self._stop.wait(), name="stop")
        log.info("daemon.started", web=f"http://{self.config.web.host}:{self.config.web.port}",
                 database=self.db.engine.dialect.name, pbx=self.config.pbx.backend,
                 forum=self.config.forum.backend, capabilities=[c.name for c in self.capabilities])
        done, _ = await asyncio.wait({web_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if web_task in done and not self._stop.is_set():
            exc = web_task.exception()
            log.error("web.failed", error=str(exc) if exc else "stopped by itself")
        log.info("daemon.shutdown.begin")
        server.should_exit = True
        await _quietly(web_task)
        stop_task.cancel()
        await _quietly(self.events.stop(), what="domain-events")
        for name, link in reversed(list(self.links.items())):
            await _quietly(link.stop(), what=name)
        self.scheduler.shutdown(wait=True)
        self.health.set(SCHEDULER, down("stopped"))
        await self.db.run(self.db.dispose)
        log.info("daemon.shutdown.done")

    def check_calendar(self) -> None:
        """Say loudly (health and log) when deadlines will soon need a year the calendar lacks."""
        from bridge.site.calendar import ChinaWorkingCalendar
        from bridge.site.clock import SiteClock

        problem = ChinaWorkingCalendar().coverage_problem(SiteClock.of(self.config).today())
        self.health.warn("calendar", problem)
        if problem:
            log.warning("calendar.not_covered", problem=problem)

    def _build_links(self) -> None:
        """Every capability's links, in capability order; the AMI listeners are gathered first,
        so the link that owns the AMI connection hands them every event."""
        runtime = self.runtime
        runtime.ami_listeners[:] = [listener for capability in self.capabilities
                                    for listener in capability.ami_listeners(runtime)]
        for capability in self.capabilities:
            for name, link in capability.links(runtime):
                if name in runtime.links:
                    raise DaemonError(f"two capabilities supply a link named {name!r}")
                runtime.links[name] = link

    def _listen(self) -> socket.socket:
        """Bind the web port here, so a taken port is a clear error before anything else runs."""
        web = self.config.web
        family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((web.host, web.port))
        except OSError as exc:
            listener.close()
            raise DaemonError(f"web.port: cannot listen on {web.host}:{web.port}: {exc.strerror}; "
                              "choose a free port in [web]") from None
        listener.listen(128)
        listener.setblocking(False)
        return listener

    def _web_server(self) -> uvicorn.Server:
        from bridge.web.app import create_app

        app = create_app(self.config, self.db, self.health, runtime=self.runtime)
        web = self.config.web
        server_config = uvicorn.Config(app, host=web.host, port=web.port, log_config=None,
                                       access_log=False, lifespan="off", timeout_graceful_shutdown=5)
        return _QuietSignalsServer(server_config)


async def _quietly(awaitable: Awaitable, what: str = "task") -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # shutting down: report and go on stopping the rest
        log.error("daemon.shutdown.error", part=what, error=repr(exc))


def run_daemon(config: Config) -> None:
    asyncio.run(Daemon(config).run())
