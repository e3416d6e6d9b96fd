"""SIPp scenarios and a small runner for the Asterisk test bed (tests/asterisk_testbed.py).

Scenarios here:
  caller.xml.in       a caller on the carrier side; From from the injection file
                      ([field0] number, [field1] UTF-8 name); DTMF as SIP INFO
                      (application/dtmf-relay, handled by res_pjsip_dtmf_info)
  dtmf_info.xml.in    one key (inserted into caller.xml.in once per key)
  phone_answer.xml    a desk phone / the carrier's far end that answers every call (shipped in
                      bridge/pbx/sipp/: `hotline-bridge sandbox phones` runs it too)
  phone_busy.xml      486 Busy Here
  phone_noanswer.xml  rings until CANCEL
  phone_notfound.xml 404 Not Found (the carrier: a number that does not exist)
"""
from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bridge.pbx.sandbox_phones import ANSWERING_PHONE, ensure_voice

SCENARIOS = Path(__file__).resolve().parent
BEHAVIOURS = {"answer": str(ANSWERING_PHONE), "busy": "phone_busy.xml", "noanswer": "phone_noanswer.xml",
              "notfound": "phone_notfound.xml"}


def free_port(host: str = "127.0.0.1", *, kinds=(socket.SOCK_DGRAM, socket.SOCK_STREAM), span: int = 1,
              even: bool = False, taken: set[int] | None = None) -> int:
    """A port (and the ``span - 1`` after it) free for every socket kind in ``kinds``."""
    taken = taken if taken is not None else set()
    for _ in range(500):
        # Above Linux's ephemeral range (32768-60999): a test bed's ports live all session, and an
        # outgoing connection given one as its source port would keep the next test from binding
        # it.  (The sandbox gives Asterisk RTP ports in 20000-39999, bridge/pbx/sandbox.py.)
        port = random.randrange(61000, 65500)
        if even:
            port -= port % 2
        ports = range(port, port + span)
        if any(p in taken for p in ports):
            continue
        socks = []
        try:
            for p in ports:
                for kind in kinds:
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((host, p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        taken.update(ports)
        return port
    raise RuntimeError("no free loopback port found")


def render_caller(digits: str | None, hold_ms: int, *, first_pause_ms: int = 700,
                  key_pause_ms: int = 150) -> str:
    """The caller scenario: one SIP INFO per key of ``digits``, then ``hold_ms`` on the line.
    A ``,`` in ``digits`` waits one more second before the next key (as in a dial string)."""
    template = (SCENARIOS / "caller.xml.in").read_text(encoding="utf-8")
    info = (SCENARIOS / "dtmf_info.xml.in").read_text(encoding="utf-8")
    keys, waits, wait = [], [], 0
    for k in (digits or ""):
        if k.isspace():
            continue
        if k == ",":
            wait += 1000
            continue
        if k not in "0123456789*#":
            raise ValueError(f"not a DTMF key: {k!r}")
        keys.append(k)
        waits.append(wait)
        wait = 0
    parts = []
    for i, key in enumerate(keys):
        pause = (first_pause_ms if i == 0 else key_pause_ms) + waits[i]
        parts.append(info.replace("@PAUSE_MS@", str(pause)).replace("@KEY@", key)
                     .replace("@CSEQ@", str(i + 2)))
    return (template.replace("@DTMF@", "".join(parts))
            .replace("@HOLD_MS@", str(max(1, int(hold_ms))))
            .replace("@BYE_CSEQ@", str(len(keys) + 2)))


class SippRun:
    """One sipp process: a batch of calls (UAC) or a listening phone (UAS).

    ``wait()`` returns sipp's exit status (0: every call succeeded); ``messages()`` is the
    SIP trace (-trace_msg); ``stop()`` ends a listening phone.  A context manager.
    """

    def __init__(self, name: str, cmd: list[str], workdir: Path):
        self.name = name
        self.cmd = cmd
        self.workdir = workdir
        self.message_file = workdir / f"{name}.messages.log"
        self.error_file = workdir / f"{name}.errors.log"
        self.stdout_file = workdir / f"{name}.out"
        self.on_stop: list = []      # callables run once when the process is stopped
        full = cmd + ["-trace_msg", "-message_file", str(self.message_file),
                      "-trace_err", "-error_file", str(self.error_file)]
        ensure_voice(workdir)
        self._out = open(self.stdout_file, "wb")
        self.proc = subprocess.Popen(full, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"sipp {self.name} still running after {timeout} s:\n{self.report()}")
        finally:
            self._out.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)   # sipp: quit gracefully
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        callbacks, self.on_stop = self.on_stop, []
        for callback in callbacks:
            callback()
        return self.proc.returncode

    def messages(self) -> str:
        try:
            return self.message_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def received(self, method_or_code: str) -> list[str]:
        """SIP messages sipp received whose first line starts with ``method_or_code``."""
        out = []
        for block in re.split(r"^-{10,} .*$", self.messages(), flags=re.M):
            first, _, rest = block.strip("\n").partition("\n")
            if "received" in first:
                message = rest.strip()
                if message.startswith(method_or_code):
                    out.append(message)
        return out

    def report(self) -> str:
        text = ""
        for path in (self.stdout_file, self.error_file):
            try:
                text += f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
            except OSError:
                pass
        return text

    def __enter__(self) -> SippRun:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if not path:
        raise RuntimeError("sipp is not installed (Debian package sip-tester; scripts/provision-asterisk installs it)")
    return path


def uac(name: str, workdir: Path, *, target: tuple[str, int], service: str, calls: list[tuple[str, str]],
        rate: float, hold_ms: int, digits: str | None, local_port: int, media_port: int,
        call_timeout_s: float = 60) -> SippRun:
    scenario = workdir / f"{name}.xml"
    scenario.write_text(render_caller(digits, hold_ms), encoding="utf-8")
    inject = workdir / f"{name}.csv"
    inject.write_text("SEQUENTIAL\n" + "".join(f"{num};{cname}\n" for num, cname in calls), encoding="utf-8")
    host, port = target
    cmd = [sipp_binary(), "-sf", str(scenario), "-inf", str(inject), "-s", service,
           "-m", str(len(calls)), "-r", str(rate), "-rp", "1000", "-l", str(max(1, len(calls))),
           "-i", host, "-p", str(local_port), "-mp", str(media_port),
           "-recv_timeout", str(int(call_timeout_s * 1000)), "-timeout", f"{int(call_timeout_s + 30)}s",
           "-timeout_error", "-nostdin", "-nd", f"{host}:{port}"]
    return SippRun(name, cmd, workdir)


def uas(name: str, workdir: Path, *, behaviour: str, host: str, port: int, media_port: int) -> SippRun:
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {sorted(BEHAVIOURS)}")
    cmd = [sipp_binary(), "-sf", str(SCENARIOS / BEHAVIOURS[behaviour]), "-i", host, "-p", str(port),
           "-mp", str(media_port), "-aa", "-nostdin", "-nd"]
    run = SippRun(name, cmd, workdir)
    # Wait until it listens (its UDP port is taken), so the first INVITE is not lost.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and run.running:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
        except OSError:
            break
        finally:
            s.close()
        time.sleep(0.02)
    if not run.running:
        raise RuntimeError(f"sipp {name} did not start:\n{run.report()}")
    return run


__all__ = ["SippRun", "free_port", "render_caller", "uac", "uas", "BEHAVIOURS", "SCENARIOS"]
