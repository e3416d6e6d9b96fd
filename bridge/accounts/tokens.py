"""API tokens: ``Authorization: Bearer hb_...``.

A token is ``hb_`` followed by 43 URL-safe characters (32 random bytes).  It is
shown once; the database keeps only its SHA-256 (hex) and its first characters
(``prefix``) so an admin can tell tokens apart.  A 256-bit random secret needs
no slow hash: SHA-256 cannot be reversed and the lookup is by hash, so the
secret itself is never compared character by character.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.accounts.service import AccountError
from bridge.db.models import ApiToken, User, utcnow
from bridge.i18n import N_

TOKEN_PREFIX = "hb_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # what is stored in ApiToken.prefix (String(16))
# last_used_at is written at most this often per token, so API reads do not all become writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, now: datetime | None = None) -> str:
    """A new token for ``user``; returned once, stored as its SHA-256 and prefix."""
    if user.disabled_at is not None:
        raise AccountError("username", N_("%(username)r is disabled; no token can be made for it"),
                           username=user.username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=hash_token(token), prefix=token[:PREFIX_LENGTH],
                         created_at=now or utcnow()))
    session.flush()
    return token


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    """The user a bearer token belongs to, or None (unknown, revoked, or user disabled).

    Records the use in ``last_used_at`` (at most once a minute per token).
    """
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    user = row.user
    if user.disabled_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.flush()
    return user


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def find_token(session: Session, ref: str | int) -> ApiToken | None:
    """A token by id, by its stored prefix, or by the token itself."""
    if isinstance(ref, int) or str(ref).isdigit():
        return session.get(ApiToken, int(ref))
    ref = str(ref)
    if len(ref) > PREFIX_LENGTH:
        return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(ref)))
    matches = list(session.scalars(select(ApiToken).where(ApiToken.prefix == ref)))
    return matches[0] if len(matches) == 1 else None


def revoke(session: Session, token: ApiToken | str | int, now: datetime | None = None) -> ApiToken:
    """Revoke a token (row, id, prefix or the token itself); revoking twice keeps the first time."""
    row = token if isinstance(token, ApiToken) else find_token(session, token)
    if row is None:
        raise AccountError("token", N_("no token matches %(token)r (give its id or prefix)"), token=token)
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.flush()
    return row
