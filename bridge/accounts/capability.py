"""Accounts as a capability: `user` and `token` commands, the first admin created at start."""
from __future__ import annotations

import structlog

from bridge.capability import Capability, Runtime

log = structlog.get_logger(__name__)


class AccountsCapability(Capability):
    name = "accounts"
    order = 30

    def commands(self):
        from bridge.accounts.cli import token, user

        return (user, token)

    def prepare(self, runtime: Runtime) -> None:
        from bridge.accounts.service import ensure_admin

        with runtime.db.session() as session:
            new_admin = ensure_admin(session)
        if new_admin:
            username, password = new_admin
            log.info("accounts.admin_created", username=username)
            runtime.announce(f"Created the first admin account. Sign in as {username!r} with this password "
                             f"(shown only now): {password}\nLost it? Set a new one with `hotline-bridge user password {username}`.")
