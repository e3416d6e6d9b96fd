"""`hotline-bridge user password NAME` and one active user per extension (`user add`, `user extension`),
on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from bridge.accounts.cli import user
from bridge.accounts.service import (
    AccountError,
    add_user,
    authenticate,
    change_extension,
    disable_user,
    get_user,
    reset_password,
)
from bridge.db.models import Role

PW = "correct horse battery"
NEW = "a brand new passphrase"


@pytest.fixture
def config_on(db_url, tmp_path, monkeypatch):
    """A config.toml on the test's database (SQLite or PostgreSQL)."""
    monkeypatch.setenv("HOTLINE_BRIDGE_SESSION_SECRET", "test-session-secret")
    monkeypatch.setenv("HOTLINE_BRIDGE_AMI_SECRET", "test-ami-secret")
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[logging]\nformat = "json"\nlevel = "warning"\n',
                    encoding="utf-8")
    return path


def run(config_path, *args, input=None):
    return CliRunner().invoke(user, [*args, "-c", str(config_path)], input=input)


def add(config_path, name, *options):
    result = run(config_path, "add", name, *options, "--password-stdin", input=PW + "\n")
    assert result.exit_code == 0, result.output
    return result


# ------------------------------------------------------------------ password


def test_password_stdin_replaces_the_old_one(config_on, db):
    add(config_on, "admin", "--role", "admin")
    result = run(config_on, "password", "admin", "--password-stdin", input=NEW + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "password of admin changed" and NEW not in result.output
    with db.session() as s:
        assert authenticate(s, "admin", NEW) is not None
        assert authenticate(s, "admin", PW) is None


def test_password_prompt_asks_twice_hidden(config_on, db):
    add(config_on, "wang", "--role", "operator")
    result = run(config_on, "password", "wang", input=f"{NEW}\nnot the same!!\n{NEW}\n{NEW}\n")
    assert result.exit_code == 0, result.output
    assert "New password" in result.output and "do not match" in result.output and NEW not in result.output
    with db.session() as s:
        assert authenticate(s, "wang", NEW) is not None


def test_password_follows_the_rules_of_user_add(config_on, db):
    add(config_on, "wang", "--role", "operator")
    short = run(config_on, "password", "wang", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "error: password: is too short; use at least 10 characters" in short.stderr
    too_long = run(config_on, "password", "wang", "--password-stdin", input="x" * 1025 + "\n")
    assert too_long.exit_code == 1 and "is too long" in too_long.stderr
    with db.session() as s:
        assert authenticate(s, "wang", PW) is not None  # unchanged


def test_password_of_unknown_or_disabled_user_is_refused_before_the_prompt(config_on, db):
    unknown = run(config_on, "password", "ghost", input="")
    assert unknown.exit_code == 1 and "error: username: no user named 'ghost'" in unknown.stderr
    assert "password:" not in unknown.output.lower()
    add(config_on, "root", "--role", "admin")
    add(config_on, "wang", "--role", "operator")
    assert run(config_on, "disable", "wang").exit_code == 0
    disabled = run(config_on, "password", "wang", input="")
    assert disabled.exit_code == 1 and "'wang' is disabled" in disabled.stderr
    with db.session() as s:
        assert authenticate(s, "wang", PW) is None


# ----------------------------------------------------------------- extension


def test_add_refuses_an_extension_an_active_user_has(config_on, db):
    add(config_on, "wang", "--role", "operator", "--extension", "8001")
    again = run(config_on, "add", "li", "--role", "operator", "--extension", "8001", "--password-stdin",
                input=PW + "\n")
    assert again.exit_code == 1
    assert "error: extension: extension 8001 is already 'wang''s" in again.stderr
    assert "Password" not in again.output  # refused before the prompt
    with db.session() as s:
        assert get_user(s, "li") is None


def test_a_disabled_users_extension_is_free_again(config_on, db):
    add(config_on, "wang", "--role", "operator", "--extension", "8001")
    assert run(config_on, "disable", "wang").exit_code == 0
    add(config_on, "li", "--role", "operator", "--extension", "8001")
    with db.session() as s:
        assert (get_user(s, "li").extension, get_user(s, "wang").extension) == ("8001", "8001")


def test_changing_an_extension(config_on, db):
    add(config_on, "wang", "--role", "operator", "--extension", "8001")
    add(config_on, "li", "--role", "operator", "--extension", "8002")
    taken = run(config_on, "extension", "li", "8001")
    assert taken.exit_code == 1 and "extension 8001 is already 'wang''s" in taken.stderr
    assert run(config_on, "extension", "wang", "8001").exit_code == 0  # one's own: no change, no refusal
    moved = run(config_on, "extension", "wang", "8003")
    assert moved.exit_code == 0 and moved.stdout.strip() == "user wang is at extension 8003"
    assert run(config_on, "extension", "li", "8001").exit_code == 0
    cleared = run(config_on, "extension", "li", "--none")
    assert cleared.exit_code == 0 and cleared.stdout.strip() == "user li has no extension"
    bad = run(config_on, "extension", "li", "80a1")
    assert bad.exit_code == 1 and "'80a1' is not a phone extension" in bad.stderr
    neither = run(config_on, "extension", "li")
    assert neither.exit_code == 2 and "give the new EXTENSION or --none" in neither.stderr
    with db.session() as s:
        assert (get_user(s, "wang").extension, get_user(s, "li").extension) == ("8003", None)


def test_service_rules(session):
    add_user(session, "wang", Role.OPERATOR, PW, extension="8001")
    add_user(session, "li", Role.OPERATOR, PW)
    with pytest.raises(AccountError) as e:
        change_extension(session, "li", "8001")
    assert e.value.field == "extension" and "'wang'" in e.value.message
    with pytest.raises(AccountError) as e:
        reset_password(session, "li", "short")
    assert e.value.field == "password"
    add_user(session, "root", Role.ADMIN, PW)
    disable_user(session, "li")
    for action in (lambda: reset_password(session, "li", NEW), lambda: change_extension(session, "li", "8009")):
        with pytest.raises(AccountError) as e:
            action()
        assert e.value.field == "username" and "disabled" in e.value.message
