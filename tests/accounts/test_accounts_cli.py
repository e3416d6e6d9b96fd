from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from click.testing import CliRunner
from sqlalchemy import select

from bridge.accounts.cli import token, user
from bridge.accounts.service import authenticate, get_user
from bridge.accounts.tokens import user_for_token
from bridge.db.models import ApiToken, Department, DepartmentKind, Role

PW = "correct horse battery"


def run(group, config_path, *args, input=None):
    return CliRunner().invoke(group, [*args, "-c", str(config_path)], input=input)


def test_add_with_password_stdin(config_path, cli_db):
    result = run(user, config_path, "add", "wang", "--role", "operator", "--extension", "8001",
                 "--display-name", "王芳", "--password-stdin", input=PW + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "added user wang (operator)"
    with cli_db.session() as s:
        stored = get_user(s, "wang")
        assert (stored.role, stored.extension, stored.display_name) == (Role.OPERATOR, "8001", "王芳")
        assert authenticate(s, "wang", PW) is not None


def test_add_prompts_twice_and_hides_the_password(config_path, cli_db):
    result = run(user, config_path, "add", "li", "--role", "supervisor", input=f"{PW}\n{PW}\n")
    assert result.exit_code == 0, result.output
    assert PW not in result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    with cli_db.session() as s:
        assert authenticate(s, "li", PW).role is Role.SUPERVISOR


def test_prompt_mismatch_asks_again(config_path, cli_db):
    result = run(user, config_path, "add", "li", "--role", "operator", input=f"{PW}\nother one!!\n{PW}\n{PW}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output


def test_bad_field_is_reported_before_the_password_prompt(config_path):
    result = run(user, config_path, "add", "li", "--role", "operator", "--extension", "x1", input="")
    assert result.exit_code == 1
    assert "error: extension: 'x1' is not a phone extension" in result.stderr
    assert "Password" not in result.output


def test_short_password_exits_1(config_path, cli_db):
    result = run(user, config_path, "add", "li", "--role", "operator", "--password-stdin", input="short\n")
    assert result.exit_code == 1
    assert "error: password: is too short" in result.stderr
    with cli_db.session() as s:
        assert get_user(s, "li") is None


def test_unknown_role_exits_2_with_choices(config_path):
    result = run(user, config_path, "add", "li", "--role", "boss", "--password-stdin", input=PW)
    assert result.exit_code == 2
    assert "spokesperson" in result.output


def test_spokesperson_with_department(config_path, cli_db):
    with cli_db.session() as s:
        s.add(Department(code="CITY-LJQ", name="衢州绿色产业集聚区管委会", kind=DepartmentKind.CITY_DEPARTMENT))
    missing = run(user, config_path, "add", "zhou", "--role", "spokesperson", "--password-stdin", input=PW)
    assert missing.exit_code == 1 and "error: department:" in missing.stderr
    result = run(user, config_path, "add", "zhou", "--role", "spokesperson", "--department", "CITY-LJQ",
                 "--password-stdin", input=PW)
    assert result.exit_code == 0, result.output
    assert "for unit CITY-LJQ" in result.stdout
    listed = run(user, config_path, "list").stdout.splitlines()
    assert listed[2].split() == ["zhou", "spokesperson", "CITY-LJQ"]


def test_duplicate_user_exits_1(config_path):
    run(user, config_path, "add", "wang", "--role", "operator", "--password-stdin", input=PW)
    again = run(user, config_path, "add", "wang", "--role", "admin", "--password-stdin", input=PW)
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_list_and_disable(config_path, cli_db):
    run(user, config_path, "add", "wang", "--role", "operator", "--extension", "8001", "--password-stdin", input=PW)
    run(user, config_path, "add", "li", "--role", "supervisor", "--password-stdin", input=PW)
    result = run(user, config_path, "disable", "wang")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("user wang disabled (since ")

    lines = run(user, config_path, "list").stdout.splitlines()
    assert lines[0].split() == ["username", "role", "extension", "unit", "display", "name", "disabled"]
    assert lines[2].split() == ["li", "supervisor"]
    assert lines[3].split()[:3] == ["wang", "operator", "8001"] and lines[3].split()[-1].count("-") == 2
    active = run(user, config_path, "list", "--active").stdout.splitlines()
    assert [line.split()[0] for line in active[2:]] == ["li"]
    with cli_db.session() as s:
        assert get_user(s, "wang").disabled_at is not None  # kept, not deleted
        assert authenticate(s, "wang", PW) is None

    unknown = run(user, config_path, "disable", "ghost")
    assert unknown.exit_code == 1 and "no user named 'ghost'" in unknown.stderr


def test_token_create_prints_it_once_on_the_last_line(config_path, cli_db):
    run(user, config_path, "add", "wang", "--role", "operator", "--password-stdin", input=PW)
    result = run(token, config_path, "create", "wang")
    assert result.exit_code == 0, result.output
    secret = result.stdout.splitlines()[-1]
    assert secret.startswith("hb_") and result.output.count(secret) == 1
    now = datetime.now(timezone.utc)
    with cli_db.session() as s:
        row = s.scalar(select(ApiToken))
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert user_for_token(s, secret, now).username == "wang"

    listed = run(token, config_path, "list").stdout
    assert secret not in listed and row.prefix in listed

    revoked = run(token, config_path, "revoke", str(row.id))
    assert revoked.exit_code == 0, revoked.output
    with cli_db.session() as s:
        assert user_for_token(s, secret, now) is None


def test_token_for_unknown_or_disabled_user_exits_1(config_path):
    unknown = run(token, config_path, "create", "ghost")
    assert unknown.exit_code == 1 and "no user named 'ghost'" in unknown.stderr
    run(user, config_path, "add", "root", "--role", "admin", "--password-stdin", input=PW)
    run(user, config_path, "add", "wang", "--role", "operator", "--password-stdin", input=PW)
    run(user, config_path, "disable", "wang")
    disabled = run(token, config_path, "create", "wang")
    assert disabled.exit_code == 1 and "disabled" in disabled.stderr
