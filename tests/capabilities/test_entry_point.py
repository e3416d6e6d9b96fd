"""A capability installed through a real entry point (a ``*.dist-info`` on the path, found by
importlib.metadata) shows up in the CLI, the web app, /healthz, the daemon's start and stop,
and the AMI subscription, with no edit in bridge/."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bridge.capability import ENTRY_POINT_GROUP, load_capabilities, subscription_of
from bridge.config import validate
from bridge.health import Health
from bridge.pbx.subscription import manager_eventfilters
from bridge.web.app import create_app
from tests.daemon.test_daemon import ENV, DaemonProcess, free_port, write_config

PLUGIN = '''
"""A site's own add-on: a satisfaction survey after each call."""
from pathlib import Path

import click
from fastapi import APIRouter

from bridge.capability import AmiSubscription, Capability
from bridge.health import UP

router = APIRouter()


@router.get("/survey/ping")
async def ping():
    return {"survey": "pong"}


@click.group("survey")
def survey():
    """The post-call satisfaction survey."""


@survey.command("report")
def report():
    click.echo("no answers yet")


class SurveyLink:
    def __init__(self, runtime, journal):
        self.runtime, self.journal = runtime, journal

    def note(self, what):
        health = self.runtime.health
        with open(self.journal, "a") as f:
            f.write(f"{what}: pbx {health.get('pbx').split(':')[0]}, forum {health.get('forum').split(':')[0]}\\n")

    async def start(self):
        self.note("start")
        self.runtime.health.set("survey", UP)

    async def stop(self):
        self.note("stop")


class SurveyCapability(Capability):
    name = "survey"
    order = 90
    ami = AmiSubscription(events=("UserEvent",), variables=("SURVEY_SCORE",))
    health_components = ("survey",)
    live_topics = ("survey",)

    def commands(self):
        return (survey,)

    def links(self, runtime):
        journal = Path(runtime.config.path("state")) / "survey-journal.txt"
        return (("survey", SurveyLink(runtime, journal)),)

    def mount(self, app, runtime):
        app.include_router(router)

    def health_probes(self):
        return {"survey": lambda db: None}
'''


@pytest.fixture
def plugin_path(tmp_path) -> Path:
    """A folder holding the module ``hb_survey`` and its distribution's metadata."""
    folder = tmp_path / "site-packages"
    (folder / "hb_survey").mkdir(parents=True)
    (folder / "hb_survey" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    info = folder / "hb_survey-1.0.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: hb-survey\nVersion: 1.0\n", encoding="utf-8")
    info.joinpath("entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [{ENTRY_POINT_GROUP}]
            survey = hb_survey:SurveyCapability
            """), encoding="utf-8")
    return folder


def plugin_env(plugin_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}


def hotline_bridge(plugin_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True,
                          env=plugin_env(plugin_path), timeout=60)


def test_the_cli_lists_and_runs_the_plugins_command_group(plugin_path):
    help_text = hotline_bridge(plugin_path, "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "survey" in help_text.stdout and "The post-call satisfaction survey." in help_text.stdout
    assert "sandbox" in help_text.stdout  # the shipped groups are still there
    report = hotline_bridge(plugin_path, "survey", "report")
    assert (report.returncode, report.stdout) == (0, "no answers yet\n")
    # Without the distribution on the path, there is no such group.
    plain = subprocess.run([sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, timeout=60)
    assert "survey" not in plain.stdout


def test_sandbox_eventfilters_include_the_plugins_events_and_varset_variables(plugin_path):
    result = hotline_bridge(plugin_path, "sandbox", "eventfilters")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "eventfilter(action(include),name(UserEvent))=" in lines
    assert "eventfilter(action(include),name(OriginateResponse))=" in lines  # callbacks' part stays
    (varset,) = [line for line in lines if "name(VarSet)" in line]
    assert "|MIXMONITOR_FILENAME|HOTLINE_CALLBACK_ATTEMPT|" in varset  # the tracker's, then callbacks'
    assert varset.endswith("|SURVEY_SCORE)$")  # the plugin's part last


def test_the_web_app_mounts_the_plugin_and_healthz_lists_its_component(plugin_path, monkeypatch, db, tmp_path):
    monkeypatch.syspath_prepend(str(plugin_path))
    capabilities = load_capabilities()
    assert [c.name for c in capabilities][-3:] == ["callbacks", "reports", "survey"]
    subscription = subscription_of(capabilities)
    assert "UserEvent" in subscription.events and "SURVEY_SCORE" in subscription.variables
    assert any("SURVEY_SCORE" in line for line in manager_eventfilters(subscription))

    config = validate({"database": {"url": str(db.url)}},
                      environ={"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"})
    with TestClient(create_app(config, db, Health())) as client:
        assert client.get("/survey/ping").json() == {"survey": "pong"}
        health = client.get("/healthz").json()
    assert health["components"]["survey"]["state"] == "up"


def test_the_daemon_starts_the_plugins_link_last_reports_it_and_stops_it_first(plugin_path, tmp_path):
    port = free_port()
    config = write_config(tmp_path, port, free_port())
    daemon = DaemonProcess(config, port, env={**ENV, "PYTHONPATH": plugin_env(plugin_path)["PYTHONPATH"]})
    try:
        deadline = time.monotonic() + 20
        while daemon.health().json()["components"]["survey"]["state"] != "up":
            assert time.monotonic() < deadline, "the plugin's link never reported"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/survey/ping", timeout=5).json() == {"survey": "pong"}
    finally:
        status, _, _, err = daemon.terminate()
    assert status == 0, err
    journal = (tmp_path / "state" / "survey-journal.txt").read_text().splitlines()
    # Started after the shipped links (pbx, forum: in capability order), stopped before them.
    started = ("pbx connecting", "pbx down")  # nothing listens on the AMI port
    # (the callbacks' links start between them: the forum may be up by then)
    assert journal[0] in [f"start: {pbx}, forum {forum}" for pbx in started for forum in ("connecting", "up")]
    assert journal[1] in [f"stop: {pbx}, forum {forum}" for pbx in started for forum in ("connecting", "up")]
    assert len(journal) == 2


def test_a_capability_that_cannot_be_loaded_is_named_in_a_clear_error(tmp_path):
    folder = tmp_path / "broken"
    info = folder / "hb_broken-1.0.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: hb-broken\nVersion: 1.0\n", encoding="utf-8")
    info.joinpath("entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = hb_missing:Nothing\n",
                                                 encoding="utf-8")
    result = hotline_bridge(folder, "--help")
    assert result.returncode == 2
    assert "error: capability 'broken' (hb_missing:Nothing) cannot be loaded: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr
