"""API authentication: `Authorization: Bearer TOKEN` (tokens from `hotline-bridge token create`)."""
from __future__ import annotations

from datetime import datetime, timezone

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bridge.db.models import Role, User

_bearer = HTTPBearer(auto_error=False, description="an API token from `hotline-bridge token create USER`")


def _lookup(db, token: str) -> User | None:
    from bridge.accounts.tokens import user_for_token

    with db.session() as session:
        user = user_for_token(session, token, datetime.now(timezone.utc))
        if user is not None:
            session.expunge(user)
        return user


async def api_user(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> User:
    """The user behind the request's bearer token, or 401 saying what is wrong."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing API token: send 'Authorization: Bearer TOKEN'",
                            headers={"WWW-Authenticate": "Bearer"})
    user = await request.app.state.db.run(_lookup, request.app.state.db, credentials.credentials)
    if user is None:
        raise HTTPException(401, "invalid, revoked or disabled API token",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return user


def require_role(*roles: Role):
    """A dependency admitting only users with one of ``roles``."""

    async def dependency(user: User = Depends(api_user)) -> User:
        if user.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(r.value for r in roles)}")
        return user

    return dependency
