"""A real site renders the shipped dialplan without a sandbox (`hotline-bridge dialplan`)."""
from __future__ import annotations

import re
import stat
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import main
from bridge.config import load_config, validate
from bridge.pbx.dialplan import render_office_hours, site_files
from bridge.pbx.sandbox import Sandbox, Tuning
from bridge.pbx.subscription import manager_eventfilters
from bridge.site.clock import SiteClock

SECRET = "site-secret-77c1"
ENV = {"HOTLINE_BRIDGE_AMI_SECRET": SECRET, "HOTLINE_BRIDGE_SESSION_SECRET": "y"}
SITE = """\
[pbx]
hotline_numbers = ["96811", "057096811"]
agi_host = "10.0.0.5"
agi_port = 4600
recordings_dir = "/srv/recordings"
[pbx.ami]
host = "127.0.0.1"
port = 5039
username = "bridge"
[sandbox]
enabled = false
"""


def _site(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(SITE, encoding="utf-8")
    return path


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert m, f"no [{name}]"
    return m.group(1)


def test_dialplan_render_writes_the_sites_files(tmp_path):
    out = tmp_path / "etc-asterisk"
    result = CliRunner().invoke(main, ["dialplan", "render", "-c", str(_site(tmp_path)), "--out", str(out)],
                                env=ENV)
    assert result.exit_code == 0, result.output
    names = {"extensions.conf", "extensions_globals.conf", "extensions_hours.conf", "queues.conf", "manager.conf"}
    assert {p.name for p in out.iterdir()} == names
    assert stat.S_IMODE((out / "manager.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "extensions.conf").stat().st_mode) == 0o644

    manager = (out / "manager.conf").read_text()
    general = _section(manager, "general")
    assert "bindaddr = 127.0.0.1" in general and "port = 5039" in general
    account = _section(manager, "bridge")
    assert f"secret = {SECRET}" in account
    assert [line for line in account.splitlines() if line.startswith("eventfilter")] == manager_eventfilters()
    assert "[observer]" not in manager

    globals_ = (out / "extensions_globals.conf").read_text()
    assert "HOTLINE_AGI = agi://10.0.0.5:4600/case-status" in globals_
    assert "HOTLINE_RECORDINGS = /srv/recordings" in globals_
    assert "HOTLINE_SOUNDS = /var/lib/asterisk/sounds/zh" in globals_
    assert "exten => 057096811,1,Goto(hotline-inbound,s,1)" in globals_
    # No static member: the daemon adds the desk phones operators sign in at (bridge/presence).
    assert not re.findall(r"^member\s*=>", (out / "queues.conf").read_text(), re.M)
    assert "[hotline-hours]" in (out / "extensions_hours.conf").read_text()


def test_the_queue_has_no_static_member(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["dialplan", "render", "-c", str(_site(tmp_path)), "-o", str(out),
                                       "--sounds", "/opt/hotline/sounds"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "member =>" not in (out / "queues.conf").read_text()
    assert "HOTLINE_SOUNDS = /opt/hotline/sounds" in (out / "extensions_globals.conf").read_text()


def test_dialplan_hours_writes_the_include(tmp_path):
    config_path = _site(tmp_path)
    target = tmp_path / "extensions_hours.conf"
    result = CliRunner().invoke(main, ["dialplan", "hours", "-c", str(config_path), "-o", str(target)], env=ENV)
    assert result.exit_code == 0, result.output
    assert target.read_text() == render_office_hours(load_config(config_path, environ=ENV))


def test_the_sandbox_and_a_site_run_the_same_dialplan(tmp_path):
    """Only the folders, the ports and the desk phones differ: one renderer serves both."""
    config = validate({"sandbox": {"state_dir": str(tmp_path / "state"), "asterisk_root": str(tmp_path / "root")}},
                      environ=ENV, base_dir=tmp_path)
    box = Sandbox(config, ami_secret=SECRET, tuning=Tuning())
    sandbox = box.render()
    inst = f"/var/lib/hotline-bridge-sandbox/{box._p.instance}"
    site = site_files(config, Tuning(), ami_secret=SECRET,
                      sounds=f"{inst}/sounds", recordings=f"{inst}/recordings", today=SiteClock.of(config).today())
    assert set(site) < set(sandbox)
    for name in ("extensions.conf", "extensions_globals.conf", "queues.conf"):
        assert site[name] == sandbox[name], name
    assert site["extensions_hours.conf"].split("\n", 3)[3] == sandbox["extensions_hours.conf"].split("\n", 3)[3]
    site_account = _section(site["manager.conf"], config.pbx.ami.username)
    assert site_account == _section(sandbox["manager.conf"], config.pbx.ami.username)


def test_without_the_ami_secret_it_names_the_variable(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[pbx]\nbackend = "none"\n[sandbox]\nenabled = false\n[callbacks]\ndialler = "twilio"\n'
                    f'[twilio]\nenabled = true\naccount_sid = "AC{"0" * 32}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["dialplan", "render", "-c", str(path), "-o", str(tmp_path / "out")],
                                env={"HOTLINE_BRIDGE_AMI_SECRET": None, "HOTLINE_BRIDGE_SESSION_SECRET": "y",
                                     "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "t"})
    assert result.exit_code == 2
    assert "pbx.ami.secret_env: set the environment variable HOTLINE_BRIDGE_AMI_SECRET" in result.output
    assert not (tmp_path / "out").exists()
