"""Configuration: every bad file gets a message naming the key; all problems at once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config, validate

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s" * 32, "HOTLINE_BRIDGE_AMI_SECRET": "ami-secret"}


def problems_of(data: dict, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(data, environ=SECRETS if environ is None else environ)
    return caught.value.problems


def test_shipped_config_is_valid_and_documents_every_section():
    config = load_config(REPO / "config.toml", environ=SECRETS)
    assert config.site.timezone == "Asia/Shanghai"
    assert config.pbx.hotline_numbers == ["96811"]
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    for section in ("[site]", "[office_hours]", "[database]", "[web]", "[pbx]", "[pbx.ami]",
                    "[sandbox]", "[forum]", "[forum.discourse]", "[callbacks]", "[twilio]", "[logging]"):
        assert section in text


def test_every_key_in_the_shipped_file_is_commented():
    # A key line must follow a comment line (directly or after other documented keys of a group).
    lines = (REPO / "config.toml").read_text(encoding="utf-8").splitlines()
    undocumented = []
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#") and not line.startswith("["):
            above = lines[:index]
            block = []
            for previous in reversed(above):
                if not previous.strip() or previous.startswith("["):
                    break
                block.append(previous)
            if not any(b.startswith("#") for b in block):
                undocumented.append(line)
    assert undocumented == []


def test_defaults_alone_are_valid():
    config = validate({}, environ=SECRETS)
    assert config.web.port == 8680


def test_unknown_key_is_named():
    assert problems_of({"pbx": {"ami": {"hots": "127.0.0.1"}}}) == [
        "pbx.ami.hots: unknown key; check its spelling against the documented keys in config.toml"
    ]


def test_wrong_type_is_named_with_what_was_given():
    (problem,) = problems_of({"web": {"port": "eighty"}})
    assert problem.startswith("web.port: ")
    assert "integer" in problem and "'eighty'" in problem


def test_missing_secret_names_key_and_variable():
    (problem,) = problems_of({}, environ={"HOTLINE_BRIDGE_SESSION_SECRET": "x"})
    assert problem == ("pbx.ami.secret_env: environment variable HOTLINE_BRIDGE_AMI_SECRET is not set "
                       "(it must hold the secret)")


def test_secret_itself_in_the_file_is_refused():
    (problem,) = problems_of({"pbx": {"ami": {"secret": "hunter2"}}})
    assert problem.startswith("pbx.ami.secret: unknown key")


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"site": {"timezone": "Mars/Olympus"}}, "site.timezone", "unknown time zone"),
        ({"office_hours": {"periods": ["17:30-08:30"]}}, "office_hours.periods.0", "ends before it starts"),
        ({"office_hours": {"periods": ["8h-12h"]}}, "office_hours.periods.0", "HH:MM-HH:MM"),
        ({"office_hours": {"periods": ["08:30-12:00", "11:00-17:00"]}}, "office_hours.periods", "overlap"),
        ({"web": {"port": 70000}}, "web.port", "less than or equal to 65535"),
        ({"database": {"url": "mysql://x"}}, "database.url", "sqlite:/// or postgresql://"),
        ({"pbx": {"hotline_numbers": []}}, "pbx.hotline_numbers", "at least 1"),
        ({"pbx": {"ami": {"secret_env": "lower-case"}}}, "pbx.ami.secret_env", "name of an environment variable"),
        ({"sandbox": {"host": "10.0.0.5"}}, "sandbox.host", "loopback"),
        ({"sandbox": {"trunk_port": 5038}}, "sandbox", "must all differ"),
        ({"callbacks": {"max_attempts": 0}}, "callbacks.max_attempts", "greater than or equal to 1"),
        ({"logging": {"level": "loud"}}, "logging.level", "'debug', 'info', 'warning' or 'error'"),
        ({"forum": {"backend": "phpbb"}}, "forum.backend", "'builtin' or 'discourse'"),
    ],
)
def test_bad_values_are_named(data, key, words):
    (problem,) = problems_of(data)
    assert problem.startswith(f"{key}: "), problem
    assert words in problem, problem


def test_all_problems_are_reported_at_once():
    found = problems_of({"web": {"port": -1, "colour": "red"}, "logging": {"format": "xml"}})
    assert {p.split(":")[0] for p in found} == {"web.port", "web.colour", "logging.format"}


def test_enabled_features_require_their_secrets_and_cross_checks():
    found = problems_of({"forum": {"backend": "discourse"}, "callbacks": {"dialler": "twilio"}})
    keys = sorted(p.split(":")[0] for p in found)
    assert keys == ["callbacks.dialler", "forum.discourse.api_key_env",
                    "forum.discourse.webhook_secret_env", "twilio.auth_token_env"]


def test_twilio_account_sid_checked_when_enabled():
    (problem,) = problems_of({"twilio": {"enabled": True, "account_sid": "nope"}},
                             environ={**SECRETS, "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "t"})
    assert problem.startswith("twilio: account_sid must look like AC")


def test_relative_sqlite_path_is_relative_to_the_file(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[database]\nurl = "sqlite:///data/x.sqlite3"\n', encoding="utf-8")
    config = load_config(path, environ=SECRETS)
    assert config.database_url == f"sqlite:///{tmp_path}/data/x.sqlite3"


def test_postgres_password_comes_from_the_environment(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[database]\nurl = "postgresql://hotline@db/hotline"\npassword_env = "HB_DB_PW"\n')
    config = load_config(path, environ={**SECRETS, "HB_DB_PW": "pw"})
    assert config.database_url.startswith("postgresql+psycopg://hotline:")
    assert config.database.url == "postgresql://hotline@db/hotline"


def test_unreadable_and_invalid_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml", environ=SECRETS)
    broken = tmp_path / "broken.toml"
    broken.write_text("[web\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, environ=SECRETS)


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=60)


def test_check_config_exit_status_and_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[web]\nport = "x"\nhots = 1\n')
    result = run_cli("check-config", "-c", str(bad), env=SECRETS)
    assert result.returncode == 2
    assert "web.port:" in result.stderr and "web.hots: unknown key" in result.stderr
    assert "2 problem(s)" in result.stderr

    good = run_cli("check-config", "-c", str(REPO / "config.toml"), env=SECRETS)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok:")


def test_config_path_from_environment_variable(tmp_path):
    bad = tmp_path / "via-env.toml"
    bad.write_text("[logging]\nlevel = 3\n")
    result = run_cli("check-config", env={**SECRETS, "HOTLINE_BRIDGE_CONFIG": str(bad)})
    assert result.returncode == 2
    assert "via-env.toml" in result.stderr and "logging.level:" in result.stderr
