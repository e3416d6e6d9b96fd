"""Shared fixtures: databases on SQLite and PostgreSQL (tests/conftest_db.py), the browser
(tests/browser.py), cheap password hashing, and a site configuration whose database is migrated."""
from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from bridge.accounts import passwords
from bridge.db.engine import Database

pytest_plugins = ["tests.conftest_db", "tests.asterisk_testbed", "tests.browser"]


def _capabilities_of_this_tree() -> None:
    """The tests load the capabilities this tree's pyproject.toml declares, whatever checkout the
    shared venv's metadata was last installed from (it may lack this tree's, or name another's);
    other distributions' entry points (a test's plugin) are kept.  After ``pip install -e .`` of
    this tree, this changes nothing."""
    import tomllib
    from importlib.metadata import EntryPoint, entry_points

    from bridge import capability

    declared = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    ours = declared["project"]["entry-points"][capability.ENTRY_POINT_GROUP]

    def this_trees_entry_points(group: str):
        found = entry_points(group=group)
        if group != capability.ENTRY_POINT_GROUP:
            return found
        others = [e for e in found if e.dist is None or e.dist.name != declared["project"]["name"]]
        return [EntryPoint(name, value, group) for name, value in ours.items()] + others

    capability.entry_points = this_trees_entry_points


_capabilities_of_this_tree()


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    # argon2's production parameters cost ~50 ms and 64 MiB per hash; tests need not pay that.
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture(autouse=True)
def structlog_defaults():
    # A test that runs configure_logging (a daemon, the CLI) leaves a level filter behind, which
    # would hide info lines from a later test's structlog.testing.capture_logs.
    yield
    structlog.reset_defaults()


@pytest.fixture
def session(db):
    with db.session() as s:
        yield s


@pytest.fixture
def config_path(tmp_path, monkeypatch, migrated_template) -> Path:
    """A valid config.toml whose SQLite database (db.sqlite3 beside it) is migrated (a copy of
    the run's migrated template)."""
    monkeypatch.setenv("HOTLINE_BRIDGE_SESSION_SECRET", "test-session-secret")
    monkeypatch.setenv("HOTLINE_BRIDGE_AMI_SECRET", "test-ami-secret")
    monkeypatch.delenv("HOTLINE_BRIDGE_CONFIG", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///db.sqlite3"\n\n[logging]\nformat = "json"\nlevel = "warning"\n',
                    encoding="utf-8")
    migrated_template.copy_to_sqlite(tmp_path / "db.sqlite3")
    return path


@pytest.fixture
def cli_db(config_path):
    """The database the commands of ``config_path`` use, for checking what they stored."""
    database = Database(f"sqlite:///{config_path.parent / 'db.sqlite3'}")
    yield database
    database.dispose()
