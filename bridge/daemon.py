"""The daemon: one asyncio process holding the web server, the scheduler, and the
PBX and forum links.

Start order: database (migrated, units and first admin ensured) -> scheduler ->
PBX and forum links -> web server.  Stop order is the reverse, so no part is
left writing into a closed database: the web server stops taking requests and
finishes those under way, the links stop, the scheduler finishes running jobs,
and only then is the database released.  SIGTERM and SIGINT both stop cleanly.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from typing import Awaitable, Callable, Protocol

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bridge.config import Config
from bridge.db.engine import Database
from bridge.health import NOT_CONFIGURED, UP, Health, down
from bridge.live import LiveEvents

log = structlog.get_logger(__name__)


class DaemonError(Exception):
    """The daemon cannot start; the message says what to fix."""


class Link(Protocol):
    """A long-lived connection the daemon starts and stops (PBX, forum)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _QuietSignalsServer(uvicorn.Server):
    # The daemon owns signal handling; uvicorn must not install (and later re-raise) its own.
    @contextlib.contextmanager
    def capture_signals(self):
        yield


def prepare_database(config: Config, db: Database) -> tuple[str, str] | None:
    """Bring the schema and the reference data up; return (username, password) of a new admin."""
    from bridge.accounts.service import ensure_admin
    from bridge.db import migrate
    from bridge.departments.service import ensure_shipped_units

    if db.engine.dialect.name == "sqlite":
        migrate.upgrade(config.database_url)  # the embedded default upgrades itself
    elif not migrate.is_up_to_date(config.database_url):
        raise DaemonError(
            "the PostgreSQL schema is not at the current revision; run `hotline-bridge db upgrade -c CONFIG` first"
        )
    with db.session() as session:
        ensure_shipped_units(session)
        return ensure_admin(session)


class Daemon:
    def __init__(self, config: Config, *, announce: Callable[[str], None] = print) -> None:
        self.config = config
        self.announce = announce
        self.health = Health()
        self.live = LiveEvents()
        self.db = Database(config.database_url)
        self.scheduler = AsyncIOScheduler(timezone=config.site.zone)
        self.links: dict[str, Link] = {}
        self._stop = asyncio.Event()

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
            new_admin = await self.db.run(prepare_database, self.config, self.db)
        except BaseException:
            listener.close()
            raise
        self.health.set("database", UP)
        if new_admin:
            username, password = new_admin
            log.info("accounts.admin_created", username=username)
            self.announce(f"Created the first admin account. Sign in as {username!r} with this password "
                          f"(shown only now): {password}")

        self.scheduler.start()
        self.health.set("scheduler", UP)
        self.check_calendar()
        self.scheduler.add_job(self.check_calendar, "cron", hour=0, minute=5, id="calendar-coverage")

        self.links = self._build_links()
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

        server = self._web_server()
        web_task = asyncio.create_task(server.serve(sockets=[listener]), name="web")
        stop_task = asyncio.create_task(self._stop.wait(), name="stop")
        log.info("daemon.started", web=f"http://{self.config.web.host}:{self.config.web.port}",
                 database=self.db.engine.dialect.name, pbx=self.config.pbx.backend,
                 forum=self.config.forum.backend)
        done, _ = await asyncio.wait({web_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if web_task in done and not self._stop.is_set():
            exc = web_task.exception()
            log.error("web.failed", error=str(exc) if exc else "stopped by itself")
        log.info("daemon.shutdown.begin")
        server.should_exit = True
        await _quietly(web_task)
        stop_task.cancel()
        for name, link in reversed(list(self.links.items())):
            await _quietly(link.stop(), what=name)
        self.scheduler.shutdown(wait=True)
        self.health.set("scheduler", down("stopped"))
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

    def _build_links(self) -> dict[str, Link]:
        links: dict[str, Link] = {}
        if self.config.pbx.backend == "none":
            self.health.set("pbx", NOT_CONFIGURED)
        else:
            from bridge.pbx.service import PbxService

            links["pbx"] = PbxService(self.config, self.db, self.health, self.live)
        from bridge.forum.link import ForumLink

        links["forum"] = ForumLink(self.config, self.db, self.health, self.live, forum=self._discourse())
        return links

    def _discourse(self):
        """The Discourse backend when configured; None lets the forum link serve the builtin board."""
        if self.config.forum.backend != "discourse":
            return None
        from bridge.forum.discourse import DiscourseForum

        return DiscourseForum.from_config(self.config)

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

        app = create_app(self.config, self.db, self.health, live=self.live)
        forum = self.links.get("forum")
        if self.config.forum.backend == "discourse" and forum is not None:
            from bridge.forum.discourse.webhook import router_from_config

            # Discourse's webhooks feed the same event path as polling (applied once by event id).
            app.include_router(router_from_config(self.config, forum=forum.forum, sink=forum.apply_events))
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
