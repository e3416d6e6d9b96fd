"""`hotline-bridge user add|list|disable|password|extension` and `hotline-bridge token create|list|revoke`."""
from __future__ import annotations

import sys

import click

from bridge.cli_options import config_option, fail, local_date, open_database, render_table
from bridge.config import Config
from bridge.db.models import Role, utcnow

ROLES = [r.value for r in Role]


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _new_password(from_stdin: bool, prompt: str = "Password") -> str:
    """The password from standard input's first line, or typed twice (hidden)."""
    if from_stdin:
        return _read_password_stdin()
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


# ------------------------------------------------------------------------- user


@click.group("user")
def user() -> None:
    """Users of the bridge: operators, supervisors, admins, spokespeople."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES, case_sensitive=False), help="the user's role")
@click.option("--extension", metavar="N", default=None, help="the desk phone extension (2-8 digits)")
@click.option("--department", "department_code", metavar="CODE", default=None,
              help="the unit a spokesperson speaks for (unit code)")
@click.option("--display-name", default="", help="the name shown to others, e.g. 王芳")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@config_option
def add_command(config: Config, name: str, role: str, extension: str | None, department_code: str | None,
                display_name: str, password_stdin: bool) -> None:
    """Add a user NAME.  The password is asked twice, or read with --password-stdin."""
    from bridge.accounts.service import AccountError, add_user, check_new_user, check_password

    with open_database(config) as db:
        # Check the other fields first, so a typo is not reported after the password is typed twice.
        try:
            with db.session(readonly=True) as session:
                check_new_user(session, name, role, extension, department_code, display_name)
        except AccountError as exc:
            fail(str(exc))
        password = _new_password(password_stdin)
        try:
            check_password(password)
            with db.session() as session:
                created = add_user(session, name, role, password, extension=extension,
                                   department_code=department_code, display_name=display_name)
                unit = f" for unit {created.department.code}" if created.department else ""
                click.echo(f"added user {created.username} ({created.role.value}){unit}")
        except AccountError as exc:
            fail(str(exc))


@user.command("list")
@click.option("--active", is_flag=True, help="hide disabled users")
@config_option
def list_command(config: Config, active: bool) -> None:
    """List the users."""
    from bridge.accounts.service import list_users

    with open_database(config) as db:
        with db.session(readonly=True) as session:
            rows = [[u.username, u.role.value, u.extension or "", u.department.code if u.department else "",
                     u.display_name, local_date(config, u.disabled_at)]
                    for u in list_users(session, include_disabled=not active)]
    click.echo(render_table(["username", "role", "extension", "unit", "display name", "disabled"], rows))


@user.command("disable")
@click.argument("name")
@config_option
def disable_command(config: Config, name: str) -> None:
    """Disable user NAME: sign-in and API tokens are refused; the user's records stay."""
    from bridge.accounts.service import AccountError, disable_user

    with open_database(config) as db:
        try:
            with db.session() as session:
                disabled = disable_user(session, name)
                when = local_date(config, disabled.disabled_at)
            click.echo(f"user {name} disabled (since {when})")
        except AccountError as exc:
            fail(str(exc))


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the new password from the first line of standard input")
@config_option
def password_command(config: Config, name: str, password_stdin: bool) -> None:
    """Set a new password for user NAME (e.g. a lost admin password).  Asked twice, or read with --password-stdin.

    Signed-in sessions and API tokens stay valid; revoke tokens with `token revoke`."""
    from bridge.accounts.service import AccountError, active_user, check_password, reset_password

    with open_database(config) as db:
        try:
            with db.session(readonly=True) as session:
                active_user(session, name)  # an unknown or disabled user is told before the password is typed
            password = _new_password(password_stdin, "New password")
            check_password(password)
            with db.session() as session:
                reset_password(session, name, password)
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"password of {name} changed")


@user.command("extension")
@click.argument("name")
@click.argument("extension", required=False)
@click.option("--none", "no_extension", is_flag=True, help="take the user's desk phone away")
@config_option
def extension_command(config: Config, name: str, extension: str | None, no_extension: bool) -> None:
    """Move user NAME to desk phone EXTENSION (or --none).  An extension belongs to one active user."""
    from bridge.accounts.service import AccountError, change_extension

    if (extension is None) == (not no_extension):
        fail("give the new EXTENSION or --none (not both)", status=2)
    with open_database(config) as db:
        try:
            with db.session() as session:
                change_extension(session, name, extension)
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"user {name} is at extension {extension}" if extension else f"user {name} has no extension")


# ------------------------------------------------------------------------ token


@click.group("token")
def token() -> None:
    """API tokens (Authorization: Bearer TOKEN)."""


@token.command("create")
@click.argument("username")
@config_option
def create_command(config: Config, username: str) -> None:
    """Create an API token for USERNAME; it is printed once, on the last line."""
    from bridge.accounts.service import AccountError, get_user
    from bridge.accounts.tokens import create_token

    with open_database(config) as db:
        try:
            with db.session() as session:
                owner = get_user(session, username)
                if owner is None:
                    raise AccountError("username", "no user named %(username)r", username=username)
                secret = create_token(session, owner)
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"API token for {username} (shown only this once; only its hash is kept):")
    click.echo(secret)


@token.command("list")
@click.argument("username", required=False)
@config_option
def token_list_command(config: Config, username: str | None) -> None:
    """List API tokens (id, prefix, user, dates), never the secrets."""
    from bridge.accounts.service import get_user
    from bridge.accounts.tokens import list_tokens

    with open_database(config) as db:
        with db.session(readonly=True) as session:
            owner = None
            if username:
                owner = get_user(session, username)
                if owner is None:
                    fail(f"username: no user named {username!r}")
            rows = [[str(t.id), t.prefix + "…", t.user.username, local_date(config, t.created_at),
                     local_date(config, t.last_used_at), local_date(config, t.revoked_at)]
                    for t in list_tokens(session, owner)]
    click.echo(render_table(["id", "prefix", "user", "created", "last used", "revoked"], rows))


@token.command("revoke")
@click.argument("ref")
@config_option
def revoke_command(config: Config, ref: str) -> None:
    """Revoke a token, given its id or prefix (see `token list`)."""
    from bridge.accounts.service import AccountError
    from bridge.accounts.tokens import revoke

    with open_database(config) as db:
        try:
            with db.session() as session:
                row = revoke(session, ref, utcnow())
                token_id = row.id
        except AccountError as exc:
            fail(str(exc))
    click.echo(f"token {token_id} revoked")
