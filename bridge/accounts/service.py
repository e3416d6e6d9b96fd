"""Users of the bridge: operators, supervisors, admins and units' spokespeople.

Users are disabled, never deleted: calls, cases and case events refer to them.
Every function takes the caller's session and commits nothing.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.accounts import passwords
from bridge.db.models import Department, Role, User, utcnow

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
EXTENSION_PATTERN = re.compile(r"^\d{2,8}$")
PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 takes any length; this only bounds the work one request can cause
DISPLAY_NAME_MAX = 120
DEFAULT_ADMIN = "admin"


class AccountError(Exception):
    """A user or token request that cannot be done; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise AccountError("role", f"unknown role {role!r}; expected one of "
                                   + ", ".join(r.value for r in Role)) from None


def check_new_user(session: Session, username: str, role: Role | str, extension: str | None = None,
                   department_code: str | None = None, display_name: str = "") -> Department | None:
    """Check everything about a new user but the password; return the spokesperson's unit.

    The command line calls this before prompting for a password, so a typo in the
    other fields is reported before the password is typed twice.
    """
    if not USERNAME_PATTERN.match(username or ""):
        raise AccountError("username", f"{username!r} is not a valid username; expected 2-64 characters: "
                                       "lower-case letters, digits, '.', '_' or '-', starting with a letter")
    role = _role(role)
    if extension is not None and not EXTENSION_PATTERN.match(extension):
        raise AccountError("extension", f"{extension!r} is not a phone extension; expected 2 to 8 digits")
    if extension is not None:
        holder = session.scalar(select(User.username).where(User.extension == extension, User.disabled_at.is_(None)))
        if holder is not None:   # one desk phone, one operator: the queue names its member after them
            raise AccountError("extension", f"extension {extension} is already active user {holder!r}'s; "
                                            "give another extension, or disable that user first")
    if len(display_name) > DISPLAY_NAME_MAX:
        raise AccountError("display_name", f"is {len(display_name)} characters long; at most {DISPLAY_NAME_MAX}")
    department = None
    if role is Role.SPOKESPERSON:
        if not department_code:
            raise AccountError("department", "a spokesperson belongs to one unit; give its code (--department CODE)")
        department = session.scalar(select(Department).where(Department.code == department_code))
        if department is None:
            raise AccountError("department", f"no unit with code {department_code!r} "
                                             "(see `hotline-bridge departments list`)")
        if department.retired_at is not None:
            raise AccountError("department", f"unit {department_code!r} is retired")
    elif department_code:
        raise AccountError("department", f"only a spokesperson belongs to a unit, not a user with role {role.value!r}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError("username", f"a user named {username!r} already exists (users are never deleted)")
    return department


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise AccountError("password", f"is too short; use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise AccountError("password", f"is too long; use at most {PASSWORD_MAX} characters")


def add_user(session: Session, username: str, role: Role | str, password: str, extension: str | None = None,
             department_code: str | None = None, display_name: str = "", now: datetime | None = None) -> User:
    """Create a user; raise AccountError naming the field at fault."""
    department = check_new_user(session, username, role, extension, department_code, display_name)
    check_password(password)
    user = User(username=username, role=_role(role), extension=extension, department=department,
                display_name=display_name, password_hash=passwords.hash_password(password),
                created_at=now or utcnow())
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session, include_disabled: bool = True) -> list[User]:
    query = select(User).order_by(User.username)
    if not include_disabled:
        query = query.where(User.disabled_at.is_(None))
    return list(session.scalars(query))


def _active_admins(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == Role.ADMIN, User.disabled_at.is_(None))))


def disable_user(session: Session, username: str, now: datetime | None = None) -> User:
    """Disable a user (sign-in and API tokens refused); the row stays.  Disabling twice keeps the first time.

    The last active admin cannot be disabled: nobody could manage users any more.
    """
    user = get_user(session, username)
    if user is None:
        raise AccountError("username", f"no user named {username!r}")
    if user.disabled_at is not None:
        return user
    if user.role is Role.ADMIN and [a.id for a in _active_admins(session)] == [user.id]:
        raise AccountError("username", f"{username!r} is the last active admin; add another admin first")
    user.disabled_at = now or utcnow()
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = passwords.hash_password(password)
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are not disabled, else None.

    An unknown username costs the same argon2 verification as a known one.  A hash
    made with older parameters is replaced by a current one on success.
    """
    user = get_user(session, username)
    if user is None:
        passwords.burn_verify(password)
        return None
    if not passwords.verify_password(user.password_hash, password):
        return None
    if user.disabled_at is not None:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.flush()
    return user


def sign_in(db, username: str, password: str) -> User | None:
    """:func:`authenticate` in a transaction of its own (it may upgrade an old hash); the user
    comes back detached, for a page or a session to keep."""
    with db.session() as session:
        user = authenticate(session, username, password)
        if user is not None:
            session.expunge(user)
        return user


def ensure_admin(session: Session) -> tuple[str, str] | None:
    """If no active admin exists, create one with a random password and return (username, password).

    The daemon calls this on start and prints the password once; it is stored
    only as an argon2 hash.  Returns None when an active admin exists.
    """
    if _active_admins(session):
        return None
    username, n = DEFAULT_ADMIN, 1
    while get_user(session, username) is not None:
        n += 1
        username = f"{DEFAULT_ADMIN}{n}"
    password = secrets.token_urlsafe(15)
    add_user(session, username, Role.ADMIN, password, display_name="Administrator")
    return username, password
