"""The real Asterisk test bed: a pytest plugin (``pytest_plugins = ["tests.asterisk_testbed"]``).

Fixture ``asterisk`` (session scope): provisions the Asterisk root (never skips: a test bed
that cannot be built is a failure), starts :class:`bridge.pbx.sandbox.Sandbox` on free
loopback ports with a state dir under pytest's tmp folder and a generated AMI secret,
and yields an :class:`AsteriskTestbed`::

    def test_something(asterisk):
        with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
            run = asterisk.place_calls(1, caller_name="张三", digits="1", hold_ms=2000)
            assert run.wait() == 0, run.report()

    async def test_events(asterisk):
        async with asterisk.ami_events() as ami:          # panoramisk, account "observer"
            ...
            event = await ami.wait_for("AgentConnect", timeout=15)

The shipped queue has no static member (the daemon adds the operators signed in at the desk,
bridge/presence).  Without a daemon doing that, the test bed stands in for signed-in operators:
every desk phone is a dynamic member, paused while its SIPp phone is not running
(``desk_phone``), so a call is only offered to phones that exist.  A test whose daemon manages
the membership itself uses ``with asterisk.membership_by_daemon():``.  Office hours start "open now" (00:00-23:59, today a
working day); a test that changes them with ``set_office_hours`` restores them with
``open_now()`` (the ``office_closed`` fixture does both).
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import secrets
import shutil
import wave
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from bridge.config import Config, validate
from bridge.pbx.dialplan import render_office_hours
from bridge.pbx.sandbox import Sandbox, SandboxError, Tuning
from tests import sipp

AMI_SECRET_ENV = "HOTLINE_BRIDGE_AMI_SECRET"
SESSION_SECRET_ENV = "HOTLINE_BRIDGE_SESSION_SECRET"
ROOT_ENV = "HOTLINE_ASTERISK_ROOT"
KEEP_ENV = "HOTLINE_KEEP_SANDBOX"   # set to 1 to keep the instance folder for a post-mortem

TEST_TUNING = Tuning(menu_timeout_s=2, case_timeout_s=4, queue_timeout_s=20, member_ring_s=3, retry_s=1,
                     wrapup_s=0, callback_ring_s=10, prompt_speed_wpm=240, boot_timeout_s=40,
                     # Short prompts keep calls short; the dialplan logic is the shipped one.
                     prompt_texts=(("greeting", "您好"), ("menu", "请按键"), ("case-number", "请输入"),
                                   ("status-unavailable", "抱歉"), ("after-status", "请按键"),
                                   ("after-hours", "请留言"), ("queue-timeout", "请留言"),
                                   ("thanks", "再见"), ("callback-intro", "回访")))


# ------------------------------------------------------------------------ AMI observer


def _utf8_protocol():
    """panoramisk's protocol decodes each TCP chunk on its own ('ignore' errors), which drops a
    UTF-8 character split across two chunks; decode incrementally instead."""
    from panoramisk.ami_protocol import AMIProtocol

    class Utf8AMIProtocol(AMIProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def data_received(self, data):
            text = self._decoder.decode(data)
            if text:
                super().data_received(text.encode("utf-8"))

    return Utf8AMIProtocol


class AmiEvents:
    """Every AMI event seen since connecting (panoramisk Message objects, dict-like)."""

    def __init__(self, manager):
        self.manager = manager
        self.events: list[Any] = []
        self._changed = asyncio.Event()

    def _on_event(self, manager, event):
        self.events.append(event)
        self._changed.set()

    def find(self, name: str | None = None, where: Callable[[Any], bool] | None = None, **fields) -> list[Any]:
        out = []
        for e in self.events:
            if name is not None and e.get("Event") != name:
                continue
            if any(str(e.get(k)) != str(v) for k, v in fields.items()):
                continue
            if where is not None and not where(e):
                continue
            out.append(e)
        return out

    def varset(self, variable: str, **fields) -> list[str]:
        """Values a channel variable took (VarSet events), in order."""
        return [e.get("Value") for e in self.find("VarSet", Variable=variable, **fields)]

    async def wait_for(self, name: str | None = None, *, timeout: float = 15,
                       where: Callable[[Any], bool] | None = None, **fields) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.find(name, where, **fields)
            if found:
                return found[0]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = sorted({e.get("Event") for e in self.events})
                raise AssertionError(f"no AMI event {name} {fields} within {timeout} s; saw {seen}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def action(self, action: dict, timeout: float = 10):
        return await asyncio.wait_for(self.manager.send_action(action), timeout)


# -------------------------------------------------------------------------- test bed


@dataclass
class AsteriskTestbed:
    sandbox: Sandbox
    config: Config
    host: str
    trunk_port: int
    carrier_port: int
    ami_port: int
    phones: dict[str, int]
    ami_username: str
    ami_secret: str
    ami_observer_secret: str  # account "observer": every event (the daemon's sees a filtered set)
    workdir: Path
    recordings_dir: Path
    cdr_db: Path          # CDR rows (table cdr): log/master.db
    cel_db: Path          # CEL rows (table cel): log/cel.db, beside it
    full_log: Path
    hotline_number: str
    # The environment the test bed's config was validated with (AMI and session secrets).
    environ: dict[str, str] = field(default_factory=dict)
    _taken: set[int] = field(default_factory=set)
    _runs: list[sipp.SippRun] = field(default_factory=list)
    _live: dict[str, int] = field(default_factory=dict)
    _count: int = 0
    _daemon_members: bool = False

    # ---------------------------------------------------------------- plumbing
    def cli(self, command: str) -> str:
        """`asterisk -rx COMMAND` on the test bed."""
        return self.sandbox.cli(command)

    def hangup(self, channel: str) -> None:
        """Hang up one channel from the Asterisk side (the SIPp caller answers the BYE)."""
        self.cli(f"channel request hangup {channel}")

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{self._count:03d}-{kind}"

    def _media_port(self) -> int:
        return sipp.free_port(self.host, span=4, even=True, taken=self._taken)

    def prompt_seconds(self, name: str) -> float:
        with wave.open(str(self.sandbox.paths()["sounds"] / f"{name}.wav")) as w:
            return w.getnframes() / w.getframerate()

    # ------------------------------------------------------------------ SIPp
    def place_calls(self, n: int = 1, rate: float = 1, caller_number: str | Iterable[str] = "13800001111",
                    caller_name: str | Iterable[str] = "测试", hold_ms: int = 2000, digits: str | None = None,
                    *, dialled: str | None = None, timeout_s: float = 60) -> sipp.SippRun:
        """Start ``n`` calls (``rate`` per second) from the carrier to the hotline; returns at once.

        Each caller keys ``digits`` (SIP INFO, a short pause before the first key) and hangs
        up ``hold_ms`` after the last key (or answers the hotline's BYE).  ``caller_number``
        and ``caller_name`` may be lists, one entry per call.  ``run.wait()`` -> 0 when every
        call completed; ``run.report()`` tells why not.
        """
        self.sync_queue()
        numbers = [caller_number] * n if isinstance(caller_number, str) else list(caller_number)
        names = [caller_name] * n if isinstance(caller_name, str) else list(caller_name)
        if len(numbers) != n or len(names) != n:
            raise ValueError("caller_number / caller_name lists need one entry per call")
        run = sipp.uac(self._name("caller"), self.workdir, target=(self.host, self.trunk_port),
                       service=dialled or self.hotline_number, calls=list(zip(numbers, names)), rate=rate,
                       hold_ms=hold_ms, digits=digits,
                       local_port=sipp.free_port(self.host, taken=self._taken),
                       media_port=self._media_port(), call_timeout_s=timeout_s)
        self._runs.append(run)
        return run

    def desk_phone(self, ext: str, behaviour: str = "answer") -> sipp.SippRun:
        """A desk phone on its configured port: 'answer' | 'busy' | 'noanswer'.  Use as a
        context manager (``with asterisk.desk_phone("8001"):``) or call ``.stop()``."""
        if ext not in self.phones:
            raise KeyError(f"no desk phone {ext}; configured: {sorted(self.phones)}")
        run = sipp.uas(self._name(f"phone{ext}-{behaviour}"), self.workdir, behaviour=behaviour,
                       host=self.host, port=self.phones[ext], media_port=self._media_port())
        self._runs.append(run)
        self._live[ext] = self._live.get(ext, 0) + 1

        def gone():
            self._live[ext] -= 1
            with contextlib.suppress(Exception):
                self.sync_queue()

        run.on_stop.append(gone)
        self.sync_queue()
        return run

    def sync_queue(self) -> None:
        """Queue members whose desk phone is not running are paused (like an operator away
        from the desk), so a call never waits on a phone nobody answers.  Done by
        ``desk_phone()``, its ``stop()`` and ``place_calls()`` (also after an Asterisk restart)."""
        if self._daemon_members:
            return
        queue = self.config.pbx.queue
        members = self.cli(f"queue show {queue}")
        for ext in self.phones:
            if f"PJSIP/{ext}" not in members:   # as an operator signed in at it (also after a restart)
                self.cli(f"queue add member PJSIP/{ext} to {queue} penalty 0 as {ext} state_interface PJSIP/{ext}")
            if self._live.get(ext, 0) > 0:
                self.cli(f"queue unpause member PJSIP/{ext} queue {queue}")
            else:
                self.cli(f"queue pause member PJSIP/{ext} queue {queue} reason no-phone-running")

    @contextlib.contextmanager
    def membership_by_daemon(self):
        """The daemon under test manages the queue's members: the test bed removes its own and
        leaves them alone until the block ends (then it stands in for operators again)."""
        queue = self.config.pbx.queue
        self._daemon_members = True
        for ext in self.phones:
            self.cli(f"queue remove member PJSIP/{ext} from {queue}")
        try:
            yield self
        finally:
            for ext in self.phones:
                self.cli(f"queue remove member PJSIP/{ext} from {queue}")
            self._daemon_members = False
            self.sync_queue()

    def carrier(self, behaviour: str = "answer") -> sipp.SippRun:
        """The carrier's far end for outbound calls (callbacks), on the carrier port."""
        run = sipp.uas(self._name(f"carrier-{behaviour}"), self.workdir, behaviour=behaviour,
                       host=self.host, port=self.carrier_port, media_port=self._media_port())
        self._runs.append(run)
        return run

    # ----------------------------------------------------------- office hours
    def set_office_hours(self, periods: list[str], *, extra_working_days: Iterable[date] = (),
                         extra_rest_days: Iterable[date] = ()) -> str:
        """Render the hours include for ``periods`` and reload the dialplan; returns the text."""
        oh = self.config.office_hours.model_copy(update={"periods": periods})
        config = self.config.model_copy(update={"office_hours": oh})
        text = render_office_hours(config, extra_working_days=extra_working_days,
                                   extra_rest_days=extra_rest_days)
        self.sandbox.write_office_hours(text)
        return text

    def _today(self) -> date:
        return datetime.now(self.config.site.zone).date()

    def open_now(self) -> str:
        """Office open around the clock today (today counted as a working day)."""
        return self.set_office_hours(["00:00-23:59"], extra_working_days=[self._today()])

    def closed_now(self) -> str:
        """One office period that excludes the present time (today a working day, so the
        period alone decides)."""
        now = datetime.now(self.config.site.zone)
        period = "20:00-21:00" if now.hour < 12 else "02:00-03:00"
        return self.set_office_hours([period], extra_working_days=[self._today()])

    # ------------------------------------------------------------------- AMI
    @contextlib.asynccontextmanager
    async def ami_events(self, pattern: str = "*", *, daemon_account: bool = False):
        """Log in (panoramisk) and collect events: as the test bed's observer, which reads
        every event, or with ``daemon_account`` as the daemon (only its filtered events)."""
        from panoramisk import Manager

        loop = asyncio.get_running_loop()
        username, secret = ((self.ami_username, self.ami_secret) if daemon_account
                            else ("observer", self.ami_observer_secret))
        manager = Manager(loop=loop, host=self.host, port=self.ami_port, username=username,
                          secret=secret, ping_delay=3600, ping_interval=3600,
                          reconnect_timeout=3600, protocol_factory=_utf8_protocol())
        log = AmiEvents(manager)
        manager.register_event(pattern, log._on_event)
        await manager.connect()
        deadline = loop.time() + 10
        while not manager.authenticated:
            if loop.time() > deadline:
                manager.close()
                raise AssertionError(f"AMI login as {username} failed on {self.host}:{self.ami_port}")
            await asyncio.sleep(0.02)
        try:
            yield log
        finally:
            manager.connection_lost = lambda exc: None   # no reconnect after close
            manager.close()

    # ------------------------------------------------------------- teardown
    def stop_sipp(self) -> None:
        for run in self._runs:
            run.stop()
        self._runs.clear()


def _build_config(state: Path, ports: dict[str, Any], root: str, environ: dict[str, str],
                  pbx: dict[str, Any] | None = None) -> Config:
    data = {
        "pbx": {"ami": {"host": "127.0.0.1", "port": ports["ami"], "username": "hotline-bridge",
                        "secret_env": AMI_SECRET_ENV},
                "agi_host": "127.0.0.1", "agi_port": ports["agi"], **(pbx or {})},
        "sandbox": {"asterisk_root": root, "state_dir": str(state), "host": "127.0.0.1",
                    "trunk_port": ports["trunk"], "carrier_port": ports["carrier"], "ami_port": ports["ami"],
                    "phones": ports["phones"]},
    }
    return validate(data, path="<asterisk test bed>", base_dir=state.parent, environ=environ)


def start_testbed(base: Path, tuning: Tuning = TEST_TUNING, *, pbx: dict[str, Any] | None = None) -> AsteriskTestbed:
    """Start a real Asterisk 22 with the shipped dialplan on free loopback ports, its files under
    ``base``; office open now.  ``tuning``: the tests' short timings and prompts, or ``Tuning()``
    for the shipped ones; ``pbx``: more ``[pbx]`` keys (e.g. ``cel_url``).  Raises SandboxError
    (leaving nothing running) if it cannot."""
    taken: set[int] = set()
    fp = lambda **kw: sipp.free_port("127.0.0.1", taken=taken, **kw)  # noqa: E731
    ports = {"trunk": fp(), "carrier": fp(), "ami": fp(), "agi": fp(),
             "phones": {"8001": fp(), "8002": fp()}}
    secret = secrets.token_urlsafe(24)
    environ = {AMI_SECRET_ENV: secret, SESSION_SECRET_ENV: secrets.token_urlsafe(24)}
    root = os.environ.get(ROOT_ENV, "/var/cache/hotline-bridge/asterisk-root")
    config = _build_config(base / "sandbox", ports, root, environ, pbx)
    today = datetime.now(config.site.zone).date()
    tuning = Tuning(**{**tuning.__dict__, "extra_working_days": (today,)})
    observer_secret = secrets.token_urlsafe(24)
    box = Sandbox(config, ami_secret=secret, tuning=tuning, ami_observer_secret=observer_secret)
    try:
        box.provision()
        box.start()
    except BaseException:
        box.stop()
        if not os.environ.get(KEEP_ENV):
            shutil.rmtree(box.instance_dir, ignore_errors=True)
        raise
    paths = box.paths()
    workdir = base / "sipp"
    workdir.mkdir()
    bed = AsteriskTestbed(
        sandbox=box, config=config, host="127.0.0.1", trunk_port=ports["trunk"],
        carrier_port=ports["carrier"], ami_port=ports["ami"], phones=dict(ports["phones"]),
        ami_username=config.pbx.ami.username, ami_secret=secret, ami_observer_secret=observer_secret,
        workdir=workdir,
        recordings_dir=paths["recordings"], cdr_db=paths["cdr_db"], cel_db=paths["cel_db"],
        full_log=paths["instance"] / "log" / "full.log",
        hotline_number=config.pbx.hotline_numbers[0], environ=environ, _taken=taken)
    bed.open_now()
    return bed


@contextlib.contextmanager
def running_testbed(base: Path, what: str = "the Asterisk test bed", **options):
    """A started test bed (``start_testbed(base, **options)``), queue synced; stopped and its
    folder removed afterwards.  A bed that cannot start fails the test, naming ``what``."""
    try:
        bed = start_testbed(base, **options)
    except SandboxError as exc:
        pytest.fail(f"{what} could not start: {exc}", pytrace=False)
    bed.sync_queue()          # members whose desk phone is not running are paused
    try:
        yield bed
    finally:
        bed.stop_sipp()
        bed.sandbox.stop()
        if not os.environ.get(KEEP_ENV):
            shutil.rmtree(bed.sandbox.instance_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory) -> AsteriskTestbed:
    """A real Asterisk 22 loaded with the shipped dialplan, on free loopback ports."""
    with running_testbed(tmp_path_factory.mktemp("asterisk")) as bed:
        yield bed


@pytest.fixture
def office_closed(asterisk):
    """Office hours that exclude now, for one test; open again afterwards."""
    asterisk.closed_now()
    try:
        yield asterisk
    finally:
        asterisk.open_now()


@pytest.fixture
def sipp_cleanup(asterisk):
    """Stops every SIPp process a test started, even when it fails."""
    yield asterisk
    asterisk.stop_sipp()


__all__ = ["AsteriskTestbed", "AmiEvents", "asterisk", "office_closed", "sipp_cleanup", "TEST_TUNING"]
