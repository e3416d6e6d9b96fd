"""The loopback Asterisk test bed (``hotline-bridge sandbox``).

A real Asterisk 22 runs from a Debian sid root (``[sandbox] asterisk_root``, built once by
``scripts/provision-asterisk``) with ``chroot ROOT asterisk -C CONF -f``.  Everything this
instance needs lives in one folder *inside* the root, because the chrooted Asterisk cannot
see anything outside it::

    ROOT/var/lib/hotline-bridge-sandbox/<instance>/     (<instance>: hash of the state dir)
        etc/         rendered configuration (asterisk.conf, pjsip.conf, manager.conf 0600, ...)
        sounds/      voice prompts (espeak-ng, or the site's recordings), moh/
        data/        Asterisk's data dir (astdatadir): links to the root's /usr/share/asterisk,
                     but data/sounds/zh -> ../../sounds, so Asterisk's own number saying
                     (digits/N, the queue's position) finds the Mandarin prompts
        recordings/  MixMonitor conversations and Record() messages
        log/         messages.log, master.db (sqlite3: table cdr) and cel.db (table cel)
        run/ lib/ spool/

The state dir (``[sandbox] state_dir``, outside the root) holds ``asterisk.pid``,
``asterisk.out`` (Asterisk's console output) and a symlink ``instance`` to the folder
above, so the daemon reads recordings and the CDR database through host paths
(:meth:`Sandbox.paths`).  Site recordings placed in ``STATE_DIR/sounds/NAME.wav`` replace
the generated prompts.

The configuration is rendered by :mod:`bridge.pbx.dialplan`, the renderer a real site
uses too; the sandbox adds its plumbing (chroot folders, ports, desk phones).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bridge.config import Config
from bridge.pbx.dialplan import (
    DIALPLAN_DIR,
    HOURS_FILE,
    dialplan_context,
    render_office_hours,
    render_templates,
    write_files,
)
from bridge.pbx.recovery import add_missing_cdr_columns, pgsql_writer_settings
from bridge.pbx.subscription import manager_eventfilters

CDR_TEMPLATE_FILE = "cdr_sqlite3_custom.conf"   # its columns => line: the cdr table's columns

REPO_DIR = Path(__file__).resolve().parents[2]
PROMPTS_FILE = DIALPLAN_DIR / "prompts.toml"
PROVISION_SCRIPT = REPO_DIR / "scripts" / "provision-asterisk"

# Inside the chroot.
INSTANCES_DIR = "/var/lib/hotline-bridge-sandbox"
ASTERISK = "/usr/sbin/asterisk"
SHARE_DIR = "/usr/share/asterisk"    # the packaged data dir, shared by every instance
# The channels' language (asterisk.conf defaultlanguage, pjsip.conf endpoints): Asterisk says
# numbers in its Chinese syntax and looks sounds up in ASTDATADIR/sounds/<LANGUAGE>/ first.
LANGUAGE = "zh"
TRUNK_ENDPOINT = "carrier"


class SandboxError(RuntimeError):
    """The sandbox could not be provisioned, started or stopped; the message says why."""


@dataclass(frozen=True)
class Tuning:
    """Timings of the rendered dialplan and queue; the tests use short ones."""

    # A caller who keys nothing joins the queue within 8 s of the answer (GB/T 33358-2016 asks
    # for an answer within 15 s): greeting + menu (about 5 s) + this (tests/dialplan/test_dialplan_timing.py).
    menu_timeout_s: int = 2          # no key after the menu -> operator
    case_timeout_s: int = 8          # keying the case number
    queue_timeout_s: int = 300       # longest wait in the queue before "leave a message"
    member_ring_s: int = 15          # a desk phone rings this long before the next
    retry_s: int = 5                 # pause between rounds of ringing
    wrapup_s: int = 15               # operator's wrap-up time after a call
    callback_ring_s: int = 45        # ring the caller this long on a callback
    # Asterisk asks each desk phone (SIP OPTIONS) this often, so a phone that is not running
    # reads UNAVAILABLE, as an unregistered one would (callbacks ask before ringing it); 0: never.
    phone_qualify_s: int = 0
    prompt_speed_wpm: int = 200      # espeak-ng speed of the generated prompts
    # espeak-ng's Mandarin voice that speaks pinyin tones as tones; plain "cmn" (1.51) reads
    # the tone digits as English numbers ("nin two hao three") and takes a quarter longer.
    prompt_voice: str = "cmn-latn-pinyin"
    boot_timeout_s: float = 30.0
    extra_working_days: tuple[date, ...] = ()
    extra_rest_days: tuple[date, ...] = ()
    # (name, text) pairs replacing texts of dialplan/prompts.toml (the tests use short ones).
    prompt_texts: tuple[tuple[str, str], ...] = ()


# ----------------------------------------------------------------------- sandbox


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class _Paths:
    root: Path
    state_dir: Path
    instance: str
    inst: str                      # inside the chroot
    host: Path = field(init=False)  # the same folder, seen from the host

    def __post_init__(self):
        self.host = self.root / self.inst.lstrip("/")

    def chroot(self, sub: str) -> str:
        return f"{self.inst}/{sub}"


class Sandbox:
    """One loopback Asterisk instance for ``config`` (sections [sandbox], [pbx], [office_hours])."""

    def __init__(self, config: Config, *, ami_secret: str | None = None,
                 tuning: Tuning | None = None, ami_observer_secret: str | None = None):
        """``ami_observer_secret``: also render an AMI account ``observer`` that reads every
        event (the test bed checks the dialplan with it; the daemon's own account is
        filtered to the events it acts on)."""
        self.config = config
        self.tuning = tuning or Tuning()
        self._ami_secret = ami_secret
        self._ami_observer_secret = ami_observer_secret
        sb = config.sandbox
        state_dir = config.path(sb.state_dir).resolve()
        instance = hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]
        self._p = _Paths(Path(sb.asterisk_root), state_dir, instance, f"{INSTANCES_DIR}/{instance}")
        self._proc: subprocess.Popen | None = None

    # ------------------------------------------------------------------ paths
    @property
    def root(self) -> Path:
        return self._p.root

    @property
    def state_dir(self) -> Path:
        return self._p.state_dir

    @property
    def instance_dir(self) -> Path:
        """This instance's folder, as the host sees it (inside the root)."""
        return self._p.host

    @property
    def conf_path(self) -> str:
        """asterisk.conf, as Asterisk (in the chroot) sees it."""
        return self._p.chroot("etc/asterisk.conf")

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "asterisk.pid"

    def paths(self) -> dict[str, Path]:
        """Host paths the daemon reads: recordings, the CDR and CEL databases, logs, config."""
        h = self._p.host
        return {
            "instance": h,
            "config": h / "etc",
            "sounds": h / "sounds",
            "recordings": h / "recordings",
            "cdr_db": h / "log" / "master.db",
            "cel_db": h / "log" / "cel.db",
            "log": h / "log" / "messages.log",
            "console": self.state_dir / "asterisk.out",
        }

    def addresses(self) -> dict[str, tuple[str, int]]:
        sb = self.config.sandbox
        out = {
            "trunk": (sb.host, sb.trunk_port),
            "carrier": (sb.host, sb.carrier_port),
            "ami": (sb.host, sb.ami_port),
        }
        for ext, port in sb.phones.items():
            out[f"phone.{ext}"] = (sb.host, port)
        return out

    # -------------------------------------------------------------- rendering
    def _secret(self) -> str:
        if self._ami_secret is not None:
            return self._ami_secret
        return self.config.secret(self.config.pbx.ami.secret_env)

    def render(self) -> dict[str, str]:
        """Every configuration file of this instance: name -> text (nothing written)."""
        cfg, sb, t, p = self.config, self.config.sandbox, self.tuning, self._p
        ctx = {
            "root": str(p.root), "inst": p.inst, "host": sb.host,
            "trunk_port": sb.trunk_port, "carrier_port": sb.carrier_port,
            "phones": dict(sb.phones), "phone_qualify_s": t.phone_qualify_s,
            **dialplan_context(cfg, t, sounds=p.chroot("sounds"), recordings=p.chroot("recordings"),
                               trunk=TRUNK_ENDPOINT),
            "ami_host": sb.host, "ami_port": sb.ami_port,
            "ami_username": cfg.pbx.ami.username, "ami_secret": self._secret(),
            "ami_eventfilters": manager_eventfilters(),
            "ami_observer_secret": self._ami_observer_secret,
            "language": LANGUAGE,
            # RTP ports: 1000 (about 500 channels) per instance, chosen by the AMI port so
            # side-by-side instances rarely share; all within 20000-39999.
            "rtp_start": 20000 + (sb.ami_port % 20) * 1000,
            "rtp_end": 20000 + (sb.ami_port % 20) * 1000 + 998,
            # CEL/CDR into PostgreSQL when [pbx] cel_url is set (cel_pgsql.conf, cdr_pgsql.conf).
            **pgsql_writer_settings(cfg),
        }
        files = render_templates(ctx)
        files[HOURS_FILE] = render_office_hours(
            cfg, extra_working_days=t.extra_working_days, extra_rest_days=t.extra_rest_days)
        return files

    def write_config(self) -> None:
        write_files(self._p.host / "etc", self.render())

    def upgrade_cdr_file(self) -> list[str]:
        """Add to an existing master.db the columns the CDR template gained since it was made
        (e.g. hotline_callback_attempt): cdr_sqlite3_custom only creates the table, and an
        INSERT naming a column the table lacks fails, losing the call's CDR row."""
        text = self.render().get(CDR_TEMPLATE_FILE, "")
        match = re.search(r"^columns\s*=>\s*(.+)$", text, re.M)
        if match is None:
            return []
        return add_missing_cdr_columns(self.paths()["cdr_db"], [c.strip() for c in match.group(1).split(",")])

    def write_office_hours(self, text: str) -> None:
        """Replace extensions_hours.conf and reload the dialplan (when running)."""
        path = self._p.host / "etc" / HOURS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        if self.running():
            self.cli("dialplan reload")

    def write_datadir(self) -> None:
        """This instance's Asterisk data dir ``data/`` (asterisk.conf ``astdatadir``).

        Every entry of the root's /usr/share/asterisk is linked (documentation, ...) except
        ``sounds/``: that is a folder of links to the root's sound folders (en, ...) plus
        ``zh -> ../../sounds``, the instance's prompts.  Asterisk looks a sound up in
        ``sounds/<language>/`` first, so the number saying of the queue's position
        announcement (``digits/N``) plays the generated Mandarin numbers of prompts.toml
        (or the site's recordings of them), and nothing is written into the shared root
        (several instances run from it at once).  Links point inside the chroot; idempotent.
        """
        data = self._p.host / "data"
        share = self._p.root / SHARE_DIR.lstrip("/")
        try:
            entries = sorted(os.listdir(share))
            sound_dirs = sorted(os.listdir(share / "sounds")) if (share / "sounds").is_dir() else []
        except OSError as exc:
            raise SandboxError(f"cannot read the Asterisk data dir {share}: {exc}") from None
        self._links(data, {name: f"{SHARE_DIR}/{name}" for name in entries if name != "sounds"},
                    keep="sounds")
        sounds = {name: f"{SHARE_DIR}/sounds/{name}" for name in sound_dirs}
        sounds[LANGUAGE] = "../../sounds"
        self._links(data / "sounds", sounds)

    @staticmethod
    def _links(folder: Path, links: dict[str, str], keep: str = "") -> None:
        """Make ``folder`` hold exactly the symlinks ``links`` (name -> target), and ``keep``."""
        folder.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.name not in links and path.name != keep:
                if not path.is_symlink():
                    raise SandboxError(f"{path}: not a link; remove it (the sandbox manages {folder})")
                path.unlink()
        for name, target in links.items():
            path = folder / name
            if path.is_symlink() and os.readlink(path) == target:
                continue
            if path.exists() and not path.is_symlink():
                raise SandboxError(f"{path}: not a link; remove it (the sandbox manages {folder})")
            tmp = folder / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, path)

    def write_prompts(self) -> None:
        """Generate (or copy the site's recordings of) every prompt into sounds/."""
        sounds = self._p.host / "sounds"
        (sounds / "moh").mkdir(parents=True, exist_ok=True)
        cache = self._p.root / "var/cache/hotline-bridge-prompts"
        cache.mkdir(parents=True, exist_ok=True)
        prompts = tomllib.loads(PROMPTS_FILE.read_text(encoding="utf-8"))["prompts"]
        for name, text in self.tuning.prompt_texts:
            if name not in prompts:
                raise SandboxError(f"unknown prompt {name!r}; {PROMPTS_FILE} has {sorted(prompts)}")
            prompts[name] = text
        speed, voice = self.tuning.prompt_speed_wpm, self.tuning.prompt_voice
        for name, text in prompts.items():
            site = self.state_dir / "sounds" / f"{name}.wav"
            (sounds / f"{name}.wav").parent.mkdir(parents=True, exist_ok=True)
            if site.is_file():
                shutil.copyfile(site, sounds / f"{name}.wav")
                continue
            key = hashlib.sha1(f"espeak-ng {voice} {speed} {text}".encode()).hexdigest()[:16]
            cached = cache / f"{key}.wav"
            if not cached.is_file():
                raw = cache / f"{key}.raw.wav"
                self._run(["espeak-ng", "-v", voice, "-s", str(speed), text, "-w", str(raw)])
                self._run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(cached)])
                raw.unlink()
            shutil.copyfile(cached, sounds / f"{name}.wav")
        for name, synth in (("beep", ["synth", "0.25", "sine", "1000", "vol", "0.5"]),
                            ("moh/tone", ["synth", "2", "sine", "440", "vol", "0.05"])):
            target = sounds / f"{name}.wav"
            if not target.is_file():
                self._run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(target), *synth])

    @staticmethod
    def _run(cmd: list[str], timeout: float = 60) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise SandboxError(f"{cmd[0]} is not installed (scripts/provision-asterisk installs it)") from None
        except subprocess.TimeoutExpired:
            raise SandboxError(f"{' '.join(cmd)} took more than {timeout} s") from None
        if res.returncode != 0:
            raise SandboxError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-800:]}")
        return res.stdout

    # ------------------------------------------------------------- lifecycle
    def root_works(self) -> bool:
        try:
            return subprocess.run(["chroot", str(self.root), ASTERISK, "-V"], capture_output=True,
                                  timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def provision(self) -> None:
        """Build the Asterisk root if it is missing or broken (scripts/provision-asterisk)."""
        if self.root_works() and all(shutil.which(t) for t in ("sipp", "espeak-ng", "sox")):
            return
        res = subprocess.run([str(PROVISION_SCRIPT), str(self.root)], capture_output=True, text=True)
        if res.returncode != 0 or not self.root_works():
            raise SandboxError(f"cannot provision the Asterisk root {self.root}: "
                               f"{(res.stderr or res.stdout).strip()[-1500:]}")

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid) and "asterisk" in _cmdline(pid) and self.conf_path in _cmdline(pid):
            return pid
        return None

    def running(self) -> bool:
        return self.pid() is not None

    def cli(self, command: str, timeout: float = 15) -> str:
        """`asterisk -rx COMMAND` against this instance."""
        return self._run(["chroot", str(self.root), ASTERISK, "-C", self.conf_path, "-rx", command],
                         timeout=timeout)

    def start(self) -> dict:
        """Provision, render, start Asterisk in the background and wait until AMI answers."""
        if self.running():
            return self.status()
        self.provision()
        sb = self.config.sandbox
        self._check_free(sb.host, sb.ami_port, socket.SOCK_STREAM, "sandbox.ami_port")
        self._check_free(sb.host, sb.trunk_port, socket.SOCK_DGRAM, "sandbox.trunk_port")
        h = self._p.host
        for sub in ("etc", "sounds", "recordings", "log", "run", "lib", "spool"):
            (h / sub).mkdir(parents=True, exist_ok=True)
        self.write_datadir()
        self.write_config()
        self.write_prompts()
        self.upgrade_cdr_file()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        link = self.state_dir / "instance"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(h)
        (h / "run" / "asterisk.ctl").unlink(missing_ok=True)
        out = open(self.paths()["console"], "ab")
        try:
            self._proc = subprocess.Popen(
                ["chroot", str(self.root), ASTERISK, "-C", self.conf_path, "-f", "-n"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            out.close()
        self.pidfile.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_booted()
        except BaseException:
            self.stop()
            raise
        return self.status()

    @staticmethod
    def _check_free(host: str, port: int, kind: int, key: str) -> None:
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            # Connections of a previous run in TIME_WAIT do not block Asterisk (it sets
            # SO_REUSEADDR too); only a listener does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
        except OSError:
            raise SandboxError(f"{key}: {host}:{port} is already in use") from None
        finally:
            s.close()

    def _wait_booted(self) -> None:
        deadline = time.monotonic() + self.tuning.boot_timeout_s
        sb = self.config.sandbox
        last = ""
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise SandboxError(f"Asterisk exited with status {self._proc.returncode} while starting; "
                                   f"see {self.paths()['console']}:\n{self._tail()}")
            if (self._p.host / "run" / "asterisk.ctl").exists():
                try:
                    self.cli("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
                    with socket.create_connection((sb.host, sb.ami_port), timeout=2) as s:
                        banner = s.recv(100).decode(errors="replace")
                    if banner.startswith("Asterisk Call Manager"):
                        return
                    last = f"AMI answered {banner!r}"
                except (SandboxError, OSError) as exc:
                    last = str(exc)
            time.sleep(0.1)
        raise SandboxError(f"Asterisk did not answer on AMI {sb.host}:{sb.ami_port} within "
                           f"{self.tuning.boot_timeout_s} s ({last}):\n{self._tail()}")

    def _tail(self, n: int = 30) -> str:
        text = ""
        for path in (self.paths()["console"], self.paths()["log"]):
            try:
                text += "\n".join(path.read_text(errors="replace").splitlines()[-n:]) + "\n"
            except OSError:
                pass
        return text

    def stop(self, timeout: float = 10) -> bool:
        """Stop this instance; True when it was running."""
        pid = self.pid() or (self._proc.pid if self._proc and self._proc.poll() is None else None)
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        try:
            self.cli("core stop now", timeout=5)
        except SandboxError:
            pass
        if not self._wait_gone(pid, timeout):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                if self._wait_gone(pid, 5):
                    break
        self.pidfile.unlink(missing_ok=True)
        return True

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def status(self) -> dict:
        return {
            "running": self.running(),
            "pid": self.pid(),
            "addresses": self.addresses(),
            "paths": self.paths(),
        }
