"""Fixtures of the forum tests (pytest offers them to every module here; nothing imports them).

The units, an operator, a supervisor and one spokesperson per unit of the article's chain
(procuratorate -> natural resources -> housing & construction) plus the Green Industry
Cluster, their API tokens, the app with the board's router and a test client on it, the
builtin forum and an outbox worker on it.  Plain helpers (the case form, filing and reading
a case through the API, ``run``) are in :mod:`tests.forum.test_builtin_support`.

The fake Discourse's fixture ``discourse_site`` is defined beside the fake
(:mod:`tests.forum.discourse_server`) and offered here through ``__all__``.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import Role
from bridge.departments.service import ensure_shipped_units
from bridge.forum.builtin.api import router as board_router
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.outbox import OutboxWorker
from bridge.forum.service import Deadlines
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.web.app import create_app
from tests.forum.discourse_server import discourse_site
from tests.forum.test_builtin_support import PASSWORD, PUBLIC_URL, SECRETS, UNITS

__all__ = ["discourse_site"]


@pytest.fixture
def site_config():
    return validate({"web": {"public_url": PUBLIC_URL, "secure_cookies": False}}, environ=SECRETS)


@pytest.fixture
def people(db) -> dict[str, str]:
    """{"operator": token, "supervisor": token, "ljq": token, "jcy": ..., "zrghj": ..., "zjj": ...}

    The spokespeople are users ``fyr-<short>`` (display name ``<CODE>发言人``), password ``PASSWORD``."""
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    tokens = {}
    with db.session() as session:
        ensure_shipped_units(session, now)
        for role in (Role.OPERATOR, Role.SUPERVISOR):
            tokens[role.value] = create_token(session, add_user(session, role.value, role, PASSWORD, now=now), now)
        for short, code in UNITS.items():
            user = add_user(session, f"fyr-{short}", Role.SPOKESPERSON, PASSWORD,
                            department_code=code, display_name=f"{code}发言人", now=now)
            tokens[short] = create_token(session, user, now)
    return tokens


@pytest.fixture
def live():
    return LiveEvents()


@pytest.fixture
def app(db, site_config, people, live):
    application = create_app(site_config, db, Health(), live=live)
    if not any(getattr(r, "path", "").startswith("/api/v1/board") for r in application.routes):
        application.include_router(board_router)
    return application


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def deadlines(site_config):
    return Deadlines.from_config(site_config)


@pytest.fixture
def forum(db):
    return BuiltinForum(db, PUBLIC_URL)


@pytest.fixture
def worker(db, forum, deadlines, live, site_config):
    return OutboxWorker(db, forum, backoff_s=site_config.forum.retry_backoff_s, deadlines=deadlines, live=live)
