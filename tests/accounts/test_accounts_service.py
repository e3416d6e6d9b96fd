from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from bridge.accounts import passwords
from bridge.accounts.service import (
    AccountError,
    add_user,
    authenticate,
    check_new_user,
    disable_user,
    ensure_admin,
    list_users,
)
from bridge.accounts.tokens import TOKEN_PREFIX, create_token, list_tokens, revoke, user_for_token
from bridge.db.models import ApiToken, Department, DepartmentKind, Role, User

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
PW = "correct horse battery"


@pytest.fixture
def units(session):
    session.add_all([
        Department(code="CITY-ZHZFJ", name="市综合行政执法局", kind=DepartmentKind.CITY_DEPARTMENT),
        Department(code="CITY-OLD", name="市旧局", kind=DepartmentKind.CITY_DEPARTMENT, retired_at=T0),
    ])
    session.flush()


def field_of(excinfo) -> str:
    return excinfo.value.field


# ------------------------------------------------------------------- passwords


def test_password_hash_verify_and_rehash():
    h = passwords.hash_password(PW)
    assert h.startswith("$argon2id$") and PW not in h
    assert passwords.verify_password(h, PW)
    assert not passwords.verify_password(h, PW + "x")
    assert not passwords.verify_password("not a hash", PW)
    assert not passwords.needs_rehash(h)
    assert passwords.needs_rehash("not a hash")


# ------------------------------------------------------------------- add_user


def test_add_operator(session):
    user = add_user(session, "wang.fang", Role.OPERATOR, PW, extension="8001", display_name="王芳")
    assert (user.username, user.role, user.extension, user.department, user.display_name) == \
        ("wang.fang", Role.OPERATOR, "8001", None, "王芳")
    assert user.password_hash.startswith("$argon2id$")
    assert user.active


def test_role_may_be_given_as_text(session):
    assert add_user(session, "sup", "Supervisor", PW).role is Role.SUPERVISOR


@pytest.mark.parametrize("username", ["", "a", "Wang", "1abc", "wang fang", "王芳", "a" * 65, "-abc", "ab/c"])
def test_username_pattern(session, username):
    with pytest.raises(AccountError) as e:
        add_user(session, username, Role.OPERATOR, PW)
    assert field_of(e) == "username"


@pytest.mark.parametrize("username", ["ab", "wang.fang", "op_01", "zhu-li", "a" * 64])
def test_good_usernames(session, username):
    add_user(session, username, Role.OPERATOR, PW)


def test_unknown_role(session):
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", "boss", PW)
    assert field_of(e) == "role"
    assert "operator, supervisor, admin, spokesperson" in str(e.value)


@pytest.mark.parametrize("extension", ["1", "123456789", "80a1", "", " 8001", "+8001"])
def test_extension_must_be_2_to_8_digits(session, extension):
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", Role.OPERATOR, PW, extension=extension)
    assert field_of(e) == "extension"


@pytest.mark.parametrize("extension", ["80", "12345678"])
def test_extension_bounds(session, extension):
    assert add_user(session, "wang", Role.OPERATOR, PW, extension=extension).extension == extension


def test_spokesperson_needs_a_unit(session, units):
    with pytest.raises(AccountError) as e:
        add_user(session, "zhf", Role.SPOKESPERSON, PW)
    assert field_of(e) == "department"


def test_spokesperson_unit_must_exist_and_be_in_service(session, units):
    with pytest.raises(AccountError) as e:
        add_user(session, "zhf", Role.SPOKESPERSON, PW, department_code="CITY-NOPE")
    assert field_of(e) == "department" and "no unit" in e.value.message
    with pytest.raises(AccountError) as e:
        add_user(session, "zhf", Role.SPOKESPERSON, PW, department_code="CITY-OLD")
    assert field_of(e) == "department" and "retired" in e.value.message


def test_spokesperson_belongs_to_the_unit(session, units):
    user = add_user(session, "zhf", Role.SPOKESPERSON, PW, department_code="CITY-ZHZFJ")
    assert user.department.code == "CITY-ZHZFJ"


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN])
def test_others_must_not_have_a_unit(session, units, role):
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", role, PW, department_code="CITY-ZHZFJ")
    assert field_of(e) == "department"


def test_password_at_least_10_characters(session):
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", Role.OPERATOR, "123456789")
    assert field_of(e) == "password"
    add_user(session, "wang", Role.OPERATOR, "1234567890")


def test_display_name_length(session):
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", Role.OPERATOR, PW, display_name="王" * 121)
    assert field_of(e) == "display_name"


def test_duplicate_username_even_when_disabled(session):
    add_user(session, "wang", Role.OPERATOR, PW)
    disable_user(session, "wang", T0)
    with pytest.raises(AccountError) as e:
        add_user(session, "wang", Role.SUPERVISOR, PW)
    assert field_of(e) == "username" and "already exists" in e.value.message


def test_check_new_user_needs_no_password(session):
    check_new_user(session, "wang", "operator", "8001")
    assert session.scalar(select(func.count()).select_from(User)) == 0


# ------------------------------------------------------------- list / disable


def test_disable_keeps_the_row(session):
    add_user(session, "wang", Role.OPERATOR, PW)
    add_user(session, "li", Role.OPERATOR, PW)
    user = disable_user(session, "wang", T0)
    assert user.disabled_at == T0 and not user.active
    again = disable_user(session, "wang", T0 + timedelta(days=1))
    assert again.disabled_at == T0
    assert [u.username for u in list_users(session)] == ["li", "wang"]
    assert [u.username for u in list_users(session, include_disabled=False)] == ["li"]
    assert session.scalar(select(func.count()).select_from(User)) == 2


def test_disable_unknown_user(session):
    with pytest.raises(AccountError) as e:
        disable_user(session, "ghost", T0)
    assert field_of(e) == "username"


def test_last_active_admin_cannot_be_disabled(session):
    add_user(session, "root", Role.ADMIN, PW)
    with pytest.raises(AccountError):
        disable_user(session, "root", T0)
    add_user(session, "root2", Role.ADMIN, PW)
    disable_user(session, "root", T0)
    with pytest.raises(AccountError):
        disable_user(session, "root2", T0)


# -------------------------------------------------------------- authenticate


def test_authenticate(session):
    add_user(session, "wang", Role.OPERATOR, PW)
    assert authenticate(session, "wang", PW).username == "wang"
    assert authenticate(session, "wang", PW + "!") is None
    assert authenticate(session, "ghost", PW) is None


def test_disabled_user_is_refused(session):
    add_user(session, "wang", Role.OPERATOR, PW)
    disable_user(session, "wang", T0)
    assert authenticate(session, "wang", PW) is None


def test_unknown_user_still_costs_a_verification(session, monkeypatch):
    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    assert authenticate(session, "ghost", PW) is None
    assert len(calls) == 1


def test_old_hash_is_replaced_on_sign_in(session, monkeypatch):
    user = add_user(session, "wang", Role.OPERATOR, PW)
    old = user.password_hash
    monkeypatch.setattr(passwords, "hasher", PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    assert passwords.needs_rehash(old)
    assert authenticate(session, "wang", PW) is user
    assert user.password_hash != old and not passwords.needs_rehash(user.password_hash)
    assert authenticate(session, "wang", PW) is user


# ------------------------------------------------------------------ ensure_admin


def test_ensure_admin_creates_one_admin_once(session):
    username, password = ensure_admin(session)
    assert username == "admin" and len(password) >= 20
    assert authenticate(session, "admin", password).role is Role.ADMIN
    assert ensure_admin(session) is None


def test_ensure_admin_skips_when_an_admin_exists(session):
    add_user(session, "boss", Role.ADMIN, PW)
    assert ensure_admin(session) is None


def test_ensure_admin_picks_a_free_name(session):
    add_user(session, "admin", Role.OPERATOR, PW)
    username, _ = ensure_admin(session)
    assert username == "admin2"


# ------------------------------------------------------------------------ tokens


def test_token_shown_once_only_hash_stored(session):
    user = add_user(session, "wang", Role.OPERATOR, PW)
    token = create_token(session, user, T0)
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43
    row = session.scalar(select(ApiToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:11]
    stored = [str(v) for v in (row.token_hash, row.prefix, row.id, row.user_id)]
    assert all(token not in value for value in stored)
    assert create_token(session, user, T0) != token


def test_user_for_token_records_use(session):
    user = add_user(session, "wang", Role.OPERATOR, PW)
    token = create_token(session, user, T0)
    row = session.scalar(select(ApiToken))
    assert row.last_used_at is None
    assert user_for_token(session, token, T0 + timedelta(hours=1)) is user
    assert row.last_used_at == T0 + timedelta(hours=1)
    user_for_token(session, token, T0 + timedelta(hours=1, seconds=10))
    assert row.last_used_at == T0 + timedelta(hours=1)  # at most once a minute
    user_for_token(session, token, T0 + timedelta(hours=2))
    assert row.last_used_at == T0 + timedelta(hours=2)


@pytest.mark.parametrize("bad", ["", "hb_", "hb_nope", "Bearer x", "x" * 500])
def test_unknown_token_refused(session, bad):
    user = add_user(session, "wang", Role.OPERATOR, PW)
    token = create_token(session, user, T0)
    assert user_for_token(session, bad, T0) is None
    assert user_for_token(session, token.upper(), T0) is None


def test_revoked_token_refused(session):
    user = add_user(session, "wang", Role.OPERATOR, PW)
    keep = create_token(session, user, T0)
    token = create_token(session, user, T0)
    row = list_tokens(session, user)[1]
    revoke(session, row.prefix, T0)
    assert row.revoked_at == T0
    assert user_for_token(session, token, T0) is None
    assert user_for_token(session, keep, T0) is user
    revoke(session, row.id, T0 + timedelta(days=1))
    assert row.revoked_at == T0
    revoke(session, keep, T0)
    assert user_for_token(session, keep, T0) is None
    with pytest.raises(AccountError):
        revoke(session, "hb_nomatch", T0)


def test_disabled_users_token_refused(session):
    add_user(session, "root", Role.ADMIN, PW)
    user = add_user(session, "wang", Role.OPERATOR, PW)
    token = create_token(session, user, T0)
    disable_user(session, "wang", T0)
    assert user_for_token(session, token, T0) is None
    with pytest.raises(AccountError):
        create_token(session, user, T0)


def test_a_second_active_user_on_the_same_extension_is_refused(session):
    add_user(session, "alice", Role.OPERATOR, "a long enough password", extension="8001")
    with pytest.raises(AccountError) as refused:
        add_user(session, "bob", Role.OPERATOR, "a long enough password", extension="8001")
    assert refused.value.field == "extension" and "alice" in refused.value.message
    disable_user(session, "alice")
    assert add_user(session, "bob", Role.OPERATOR, "a long enough password", extension="8001").extension == "8001"
