"""The rendered Asterisk configuration (no Asterisk needed) and the `sandbox` commands."""
from __future__ import annotations

import inspect
import os
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.config import validate
from bridge.pbx import subscription
from bridge.pbx.sandbox import DIALPLAN_DIR, LANGUAGE, PROMPTS_FILE, Sandbox, SandboxError, Tuning
from bridge.pbx.tracker import CallTracker
from bridge.pbx.sandbox_cli import sandbox

SECRET = "not-in-the-repo-4b1d"
ENV = {"HOTLINE_BRIDGE_AMI_SECRET": SECRET, "HOTLINE_BRIDGE_SESSION_SECRET": "y"}


def _box(tmp_path: Path, **sandbox_section) -> Sandbox:
    data = {"sandbox": {"state_dir": str(tmp_path / "state"), "asterisk_root": str(tmp_path / "root"),
                        **sandbox_section},
            "pbx": {"agi_host": "127.0.0.1", "agi_port": 4599}}
    config = validate(data, environ=ENV, base_dir=tmp_path)
    return Sandbox(config, ami_secret=SECRET, tuning=Tuning())


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert m, f"no [{name}]"
    return m.group(1)


def test_manager_conf_grants_only_what_the_daemon_needs(tmp_path):
    files = _box(tmp_path, ami_port=5999).render()
    manager = files["manager.conf"]
    general = _section(manager, "general")
    assert "bindaddr = 127.0.0.1" in general and "port = 5999" in general
    account = _section(manager, "hotline-bridge")
    assert f"secret = {SECRET}" in account
    assert re.search(r"^read = call,agent,dialplan,cdr$", account, re.M)
    assert re.search(r"^write = originate,call,reporting,agent$", account, re.M)
    assert "permit = 127.0.0.1/255.255.255.255" in account
    assert "[observer]" not in manager   # the test bed's all-events account only when asked


def test_the_daemons_account_is_filtered_to_the_events_it_acts_on(tmp_path):
    account = _section(_box(tmp_path).render()["manager.conf"], "hotline-bridge")
    names = re.findall(r"^eventfilter\(action\(include\),name\((\w+)\)\)=$", account, re.M)
    assert set(names) == set(subscription.EVENTS) - {"VarSet"}
    # VarSet only for the variables the tracker reads (inherited "_"/"__" forms too).
    (varset,) = re.findall(r"^eventfilter\(action\(include\),name\(VarSet\),header\(Variable\),"
                           r"method\(regex\)\)=(.+)$", account, re.M)
    wanted = re.compile(varset)
    for variable in ("HOTLINE_DISPOSITION", "__HOTLINE_RECORDING", "MIXMONITOR_FILENAME"):
        assert wanted.search(variable), variable
    for variable in ("AGISTATUS", "BRIDGEPEER", "DIALSTATUS", "X_HOTLINE_CASE", "HOTLINE_CHOICE",
                     "HOTLINE_RECORDING_X"):
        assert not wanted.search(variable), variable
    # No exclude filters, no legacy regex filters over the whole event.
    assert len(re.findall(r"^eventfilter", account, re.M)) == len(subscription.EVENTS)


def test_the_subscription_covers_every_event_the_tracker_handles():
    tracker = CallTracker(["96811"])
    assert {name.lower() for name in subscription.TRACKER.events} == tracker.event_names
    assert set(subscription.TRACKER.events) <= set(subscription.EVENTS)   # the installed union keeps them
    # The VarSet variables the tracker reads (CallTracker._on_varset); callbacks add their own.
    source = inspect.getsource(CallTracker._on_varset)
    read = set(re.findall(r'"((?:HOTLINE|MIXMONITOR)_[A-Z_]+)"', source))
    assert read == set(subscription.TRACKER.variables)
    assert read <= set(subscription.VARSET_NAMES)


def test_sandbox_eventfilters_prints_the_accounts_filter_lines_for_a_real_site(tmp_path):
    result = CliRunner().invoke(sandbox, ["eventfilters"])
    assert result.exit_code == 0, result.output
    account = _section(_box(tmp_path).render()["manager.conf"], "hotline-bridge")
    printed = result.output.splitlines()
    assert printed and all(line in account.splitlines() for line in printed)
    assert len(printed) == len(re.findall(r"^eventfilter", account, re.M))


def test_an_observer_account_is_rendered_for_the_test_bed(tmp_path):
    data = {"sandbox": {"state_dir": str(tmp_path / "state"), "asterisk_root": str(tmp_path / "root")}}
    config = validate(data, environ=ENV, base_dir=tmp_path)
    manager = Sandbox(config, ami_secret=SECRET, ami_observer_secret="watching-9").render()["manager.conf"]
    observer = _section(manager, "observer")
    assert "secret = watching-9" in observer and re.search(r"^read = all$", observer, re.M)
    assert "eventfilter" not in observer


def test_no_secret_is_shipped_in_the_dialplan_folder():
    for path in DIALPLAN_DIR.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8")
            assert not re.search(r"^secret\s*=\s*\S+\s*$", path.read_text(encoding="utf-8"), re.M), path


def test_pjsip_has_the_trunk_the_carrier_and_one_endpoint_per_desk_phone(tmp_path):
    box = _box(tmp_path, trunk_port=5261, carrier_port=5271, phones={"8001": 5281, "8002": 5282, "8003": 5283})
    pjsip = box.render()["pjsip.conf"]
    assert "bind = 127.0.0.1:5261" in pjsip
    assert "contact = sip:127.0.0.1:5271" in pjsip
    assert "match = 127.0.0.1" in _section(pjsip, "carrier-identify")
    for ext, port in {"8001": 5281, "8002": 5282, "8003": 5283}.items():
        assert f"contact = sip:{ext}@127.0.0.1:{port}" in pjsip
    queues = box.render()["queues.conf"]
    assert not re.findall(r"^member\s*=>", queues, re.M)   # dynamic: the daemon adds signed-in operators


def test_globals_point_agi_at_the_configured_fastagi_server(tmp_path):
    box = _box(tmp_path)
    globals_ = box.render()["extensions_globals.conf"]
    assert "HOTLINE_AGI = agi://127.0.0.1:4599/case-status" in globals_
    assert "exten => 96811,1,Goto(hotline-inbound,s,1)" in globals_
    # Paths inside the root; the host sees them under ROOT/.
    assert f"HOTLINE_RECORDINGS = /var/lib/hotline-bridge-sandbox/{box._p.instance}/recordings" in globals_
    assert box.paths()["recordings"] == tmp_path / "root" / "var/lib/hotline-bridge-sandbox" / box._p.instance / "recordings"
    assert box.paths()["cdr_db"].name == "master.db"


def test_asterisk_conf_keeps_every_directory_inside_the_instance(tmp_path):
    box = _box(tmp_path)
    conf = box.render()["asterisk.conf"]
    inst = f"/var/lib/hotline-bridge-sandbox/{box._p.instance}"
    for key in ("astetcdir", "astvarlibdir", "astdbdir", "astspooldir", "astrundir", "astlogdir",
                "astdatadir"):
        assert re.search(rf"^{key} => {re.escape(inst)}/", conf, re.M), key
    assert re.search(rf"^astdatadir => {re.escape(inst)}/data$", conf, re.M)
    assert re.search(rf"^defaultlanguage = {LANGUAGE}$", conf, re.M)
    modules = box.render()["modules.conf"]
    assert "autoload = no" in modules


def _prompts() -> dict[str, str]:
    return tomllib.loads(PROMPTS_FILE.read_text(encoding="utf-8"))["prompts"]


def test_the_queue_announces_positions_with_its_own_mandarin_prompts(tmp_path):
    box = _box(tmp_path)
    queue = _section(box.render()["queues.conf"], "hotline")
    assert re.search(r"^announce-position = yes$", queue, re.M)
    assert re.search(r"^announce-frequency = 60$", queue, re.M)
    assert re.search(r"^announce-to-first-user = no$", queue, re.M)
    sounds = f"/var/lib/hotline-bridge-sandbox/{box._p.instance}/sounds"
    options = dict(re.findall(r"^((?:queue-[a-z0-9]+|periodic-announce)) = (\S+)$", queue, re.M))
    # Every sound app_queue may say to a caller (or to the operator) is ours, by full path.
    assert set(options) == {"queue-youarenext", "queue-thereare", "queue-callswaiting", "queue-thankyou",
                            "queue-holdtime", "queue-minute", "queue-minutes", "queue-seconds",
                            "queue-quantity1", "queue-quantity2", "queue-reporthold", "periodic-announce"}
    prompts = _prompts()
    for option, path in options.items():
        assert path.startswith(sounds + "/"), (option, path)
        assert path[len(sounds) + 1:] in prompts, (option, path)
    # "您现在排在第" N "位。": the number in the middle reads naturally.
    assert prompts["queue-thereare"].endswith("第") and prompts["queue-callswaiting"].startswith("位")
    # The channels speak the language whose sounds folder holds the prompts (data/sounds/zh).
    pjsip = box.render()["pjsip.conf"]
    assert set(re.findall(r"^language = (\S+)$", pjsip, re.M)) == {LANGUAGE} == {"zh"}


def _say_number_zh(num: int) -> list[str]:
    """The files Asterisk 22's Chinese number syntax plays (main/say.c,
    ast_say_number_full_zh), for 0 < num < 10000."""
    files: list[str] = []
    playh = playt = playz = False
    last = 0
    while num or playh or playt or playz:
        if playz:
            fn, last, playz = "digits/0", 0, False
        elif playh:
            fn, playh = "digits/hundred", False
        elif playt:
            fn, playt = "digits/thousand", False
        elif num < 1000 and last and last - len(str(num)) > 1:
            last, playz = len(str(num)), True     # a skipped place: "零"
            continue
        elif num < 10:
            fn, num = f"digits/{num}", 0
        elif num < 100:
            last, fn, num = len(str(num)), f"digits/{num // 10 * 10}", num % 10
        elif num < 1000:
            fn, playh, last, num = f"digits/{num // 100}", True, len(str(num)), num % 100
        else:
            fn, playt, last, num = f"digits/{num // 1000}", True, len(str(num)), num % 1000
        files.append(fn)
    return files


def test_prompts_hold_every_number_file_asterisk_says_a_position_with():
    assert _say_number_zh(2) == ["digits/2"]
    assert _say_number_zh(23) == ["digits/20", "digits/3"]
    assert _say_number_zh(105) == ["digits/1", "digits/hundred", "digits/0", "digits/5"]
    assert _say_number_zh(1005) == ["digits/1", "digits/thousand", "digits/0", "digits/5"]
    prompts = _prompts()
    needed = {f for n in range(1, 10000) for f in _say_number_zh(n)}
    assert needed <= set(prompts), sorted(needed - set(prompts))
    assert prompts["digits/20"] == "二十" and prompts["digits/hundred"] == "百"


def _fake_root(tmp_path: Path) -> Path:
    share = tmp_path / "root" / "usr/share/asterisk"
    for sub in ("documentation", "static-http", "sounds/en_US_f_Allison/digits"):
        (share / sub).mkdir(parents=True)
    (share / "sounds/en").symlink_to("/usr/share/asterisk/sounds/en_US_f_Allison")
    return share


def test_each_instance_has_its_own_data_dir_with_the_prompts_as_its_mandarin_sounds(tmp_path):
    share = _fake_root(tmp_path)
    box = _box(tmp_path)
    box.write_datadir()
    data = box.instance_dir / "data"
    assert {p.name: os.readlink(p) for p in data.iterdir() if p.is_symlink()} == {
        "documentation": "/usr/share/asterisk/documentation",      # inside the chroot
        "static-http": "/usr/share/asterisk/static-http"}
    assert {p.name: os.readlink(p) for p in (data / "sounds").iterdir()} == {
        "en": "/usr/share/asterisk/sounds/en",
        "en_US_f_Allison": "/usr/share/asterisk/sounds/en_US_f_Allison",
        "zh": "../../sounds"}
    (box.instance_dir / "sounds/digits").mkdir(parents=True)
    (box.instance_dir / "sounds/digits/2.wav").write_bytes(b"RIFF")
    assert (data / "sounds/zh/digits/2.wav").read_bytes() == b"RIFF"
    # Nothing written into the shared root; again (a restart) is the same, stale links go.
    assert sorted(p.name for p in (share / "sounds").iterdir()) == ["en", "en_US_f_Allison"]
    (share / "static-http").rmdir()
    box.write_datadir()
    assert sorted(p.name for p in data.iterdir()) == ["documentation", "sounds"]
    # A real folder where a link belongs is not silently replaced.
    (data / "sounds/zh").unlink()
    (data / "sounds/zh").mkdir()
    with pytest.raises(SandboxError, match="not a link"):
        box.write_datadir()


def test_sandbox_status_prints_one_address_per_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[sandbox]\nstate_dir = "state"\nasterisk_root = "%s"\ntrunk_port = 6160\ncarrier_port = 6170\n'
        'ami_port = 6038\nphones = { "8001" = 6181, "8002" = 6182 }\n' % (tmp_path / "root"), encoding="utf-8")
    result = CliRunner().invoke(sandbox, ["status", "-c", str(config)], env=ENV)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "=" in line]
    assert lines == ["trunk=127.0.0.1:6160", "carrier=127.0.0.1:6170", "ami=127.0.0.1:6038",
                     "phone.8001=127.0.0.1:6181", "phone.8002=127.0.0.1:6182"]


def test_sandbox_commands_report_configuration_errors(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[sandbox]\ntrunk_port = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(sandbox, ["status", "-c", str(config)], env=ENV)
    assert result.exit_code == 2
    assert "sandbox.trunk_port" in result.stderr
