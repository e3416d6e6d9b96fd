"""`hotline-bridge db upgrade|current` (the group the main CLI attaches)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from bridge.db import migrate
from bridge.db.cli import db


def _secrets(monkeypatch) -> None:
    monkeypatch.setenv("HOTLINE_BRIDGE_SESSION_SECRET", "s" * 32)
    monkeypatch.setenv("HOTLINE_BRIDGE_AMI_SECRET", "a" * 16)


def _config(tmp_path, url: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"[database]\nurl = {json.dumps(url)}\n", encoding="utf-8")
    return str(path)


def test_upgrade_then_current(empty_db_url, tmp_path, monkeypatch):
    _secrets(monkeypatch)
    config = _config(tmp_path, empty_db_url)
    runner = CliRunner()
    head = migrate.head_revision()

    result = runner.invoke(db, ["current", "-c", config])
    assert result.exit_code == 0, result.output
    assert "(empty)" in result.output and "hotline-bridge db upgrade" in result.output

    result = runner.invoke(db, ["upgrade", "-c", config])
    assert result.exit_code == 0, result.output
    assert f"upgraded from (empty) to {head}" in result.output
    assert migrate.is_up_to_date(empty_db_url)

    result = runner.invoke(db, ["upgrade", "-c", config])
    assert result.exit_code == 0, result.output
    assert f"already at revision {head}" in result.output

    result = runner.invoke(db, ["current", "-c", config])
    assert result.exit_code == 0, result.output
    assert f"revision {head} (head)" in result.output


def test_relative_sqlite_path_is_resolved_against_the_config_folder(tmp_path, monkeypatch):
    _secrets(monkeypatch)
    monkeypatch.chdir("/")
    config = _config(tmp_path, "sqlite:///state/hotline-bridge.sqlite3")
    result = CliRunner().invoke(db, ["upgrade", "-c", config])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "state" / "hotline-bridge.sqlite3").is_file()


def test_bad_config_exits_2(tmp_path, monkeypatch):
    _secrets(monkeypatch)
    config = _config(tmp_path, "mysql://x")
    result = CliRunner().invoke(db, ["upgrade", "-c", config])
    assert result.exit_code == 2
    assert "database.url" in result.output
