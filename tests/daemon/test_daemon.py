"""The daemon as a process: starts on SQLite, answers /healthz honestly, stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

AMI_SECRET = "ami-secret-never-logged-7f3a"
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOTLINE_BRIDGE_SESSION_SECRET": "session-secret-never-logged-91c2",
    "HOTLINE_BRIDGE_AMI_SECRET": AMI_SECRET,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, web_port: int, ami_port: int, agi_port: int | None = None) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///state/bridge.sqlite3"
[web]
port = {web_port}
[pbx]
agi_port = {agi_port or free_port()}
[pbx.ami]
port = {ami_port}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[sandbox]
enabled = false
[logging]
format = "json"
""", encoding="utf-8")
    return path


class DaemonProcess:
    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None):
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or ENV)

    def health(self, timeout: float = 40.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("daemon did not answer /healthz in time")

    def terminate(self) -> tuple[int, float, str, str]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, time.monotonic() - started, out, err


@pytest.fixture
def site(tmp_path):
    web_port, ami_port = free_port(), free_port()  # nothing listens on ami_port
    return write_config(tmp_path, web_port, ami_port), web_port


def test_first_start_creates_admin_reports_health_and_stops_on_sigterm(site, tmp_path):
    config, port = site
    daemon = DaemonProcess(config, port)
    try:
        response = daemon.health()
        deadline = time.monotonic() + 15
        while response.json()["components"]["forum"]["state"] == "connecting" and time.monotonic() < deadline:
            time.sleep(0.2)  # the forum link's first cycle (outbox, events) is under way
            response = daemon.health()
    except BaseException:
        daemon.proc.kill()
        raise
    body = response.json()
    assert response.status_code == 200
    components = body["components"]
    assert components["database"]["state"] == "up"
    assert components["scheduler"]["state"] == "up"
    assert components["forum"]["state"] == "up" and components["forum"]["backend"] == "builtin"
    # Nothing listens on the AMI port: the PBX link must not claim to be up.
    assert components["pbx"]["state"] == "connecting" or components["pbx"]["state"].startswith("down: ")
    assert body["status"] == "degraded"

    status, took, out, err = daemon.terminate()
    assert status == 0, err
    assert took < 10
    admin_lines = [line for line in out.splitlines() if "first admin account" in line]
    assert len(admin_lines) == 1
    password = admin_lines[0].rsplit(": ", 1)[1]
    assert len(password) >= 12

    # Logs are JSON lines (not a terminal) and never carry a secret or the admin's password.
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("event") == "daemon.started" for r in records)
    assert any(r.get("event") == "daemon.shutdown.done" for r in records)
    for secret in (AMI_SECRET, ENV["HOTLINE_BRIDGE_SESSION_SECRET"], password):
        assert secret not in err

    # The database was closed cleanly: consistent, and the admin is stored.
    with sqlite3.connect(tmp_path / "state" / "bridge.sqlite3") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("select username, role from users").fetchall() == [("admin", "admin")]
        assert connection.execute("select count(*) from departments").fetchone() == (108,)

    # A second start prints no password: the admin exists already.
    again = DaemonProcess(config, port)
    try:
        again.health()
    finally:
        status, _, out, _ = again.terminate()
    assert status == 0
    assert "first admin account" not in out


def test_taken_web_port_is_a_clear_error(site):
    config, port = site
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = subprocess.run([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                                capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 1
    assert f"web.port: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_bad_config_exits_2_before_starting(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[web]\nport = 0\n")
    result = subprocess.run([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 2
    assert "web.port: Input should be greater than or equal to 1" in result.stderr


def test_calendar_gap_is_a_health_warning(monkeypatch, tmp_path):
    from bridge.config import validate
    from bridge.daemon import Daemon
    from bridge.site.calendar import ChinaWorkingCalendar

    config = validate({"database": {"url": f"sqlite:///{tmp_path}/d.sqlite3"},
                       "pbx": {"backend": "none"}, "callbacks": {"dialler": "twilio"},
                       "twilio": {"enabled": True, "account_sid": "AC" + "0" * 32}},
                      environ={"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "t"})
    daemon = Daemon(config)
    monkeypatch.setattr(ChinaWorkingCalendar, "coverage_problem", lambda self, today: "no 2027 arrangement yet")
    daemon.check_calendar()
    assert daemon.health.snapshot()["warnings"] == {"calendar": "no 2027 arrangement yet"}
    monkeypatch.setattr(ChinaWorkingCalendar, "coverage_problem", lambda self, today: None)
    daemon.check_calendar()
    assert daemon.health.snapshot()["warnings"] == {}


def test_taken_agi_port_is_a_clear_error(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        agi_port = blocker.getsockname()[1]
        config = write_config(tmp_path, free_port(), free_port(), agi_port)
        result = subprocess.run([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                                capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 1
    assert f"error: pbx.agi_port: cannot listen on 127.0.0.1:{agi_port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_the_daemon_even_when_nobody_reads_its_logs(site):
    config, port = site
    daemon = DaemonProcess(config, port)
    try:
        daemon.health()
        daemon.proc.stdout.close()  # the reader goes away, as when a supervising shell dies
        daemon.proc.stderr.close()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=15) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
