"""One active user per desk extension: the partial unique index ``uq_users_active_extension``.

The accounts service refuses a second active user on an extension (``user add``, ``user
extension``, the admin page); this index makes the database refuse it too, also for two
admins at the same moment.  Partial: a disabled user keeps their old extension as history.
Until now duplicates were accepted silently, so the upgrade first names any it finds and
stops, storing nothing, for an admin to fix (``hotline-bridge user extension NAME N|--none``
or ``user disable NAME``).

Revision ID: 0011_users_active_extension
Revises: 0010_parked_domain_events
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_users_active_extension"
down_revision: str | None = "0010_parked_domain_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "disabled_at IS NULL AND extension IS NOT NULL"


def upgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        f"SELECT extension, username FROM users WHERE {ACTIVE} AND extension IN "
        f"(SELECT extension FROM users WHERE {ACTIVE} GROUP BY extension HAVING count(*) > 1) "
        "ORDER BY extension, username")).all()
    if shared:
        holders: dict[str, list[str]] = {}
        for extension, username in shared:
            holders.setdefault(extension, []).append(username)
        listed = "; ".join(f"{ext}: {', '.join(names)}" for ext, names in holders.items())
        raise RuntimeError(f"active users share a desk extension ({listed}); give each its own with "
                           "`hotline-bridge user extension NAME N` (or --none, or `user disable NAME`), then upgrade")
    op.create_index("uq_users_active_extension", "users", ["extension"], unique=True,
                    sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index("uq_users_active_extension", table_name="users")
