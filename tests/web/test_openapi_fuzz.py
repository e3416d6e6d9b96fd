"""Schemathesis over the daemon's own ``/api/v1/openapi.json``: every operation of the document,
with an admin's token, gets generated requests; none may answer a server error
(``not_a_server_error``), and every answer must match the schema documented for its status
(``response_schema_conformance``).

The operations are read from the document (of an app built here only to read it), so a route
added later is covered without an edit here.  Each runs on the test's own app and database (the
shipped units, a user and token per role, one call), seeded (``derandomize``) and bounded
(``EXAMPLES_PER_OPERATION``), so CI runs the same requests each time.  (Schemathesis' own pytest
loader, ``from_fixture``, does not run under pytest 9; the loop below is what it would do.)
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from bridge.config import validate
from bridge.db.engine import Database
from bridge.health import Health
from bridge.web.app import create_app
from tests.web.conftest import SECRETS, bearer

DOCUMENT = "/api/v1/openapi.json"
EXAMPLES_PER_OPERATION = 25


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation of the document (no database is touched to read it)."""
    app = create_app(validate({}, environ=SECRETS), Database("sqlite://"), Health())
    document = schemathesis.openapi.from_asgi(DOCUMENT, app)
    return sorted((operation.method.upper(), operation.path)
                  for operation in (result.ok() for result in document.get_all_operations()))


OPERATIONS = _operations()


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error_and_answers_as_documented(web_app, tokens, method, path):
    operation = schemathesis.openapi.from_asgi(DOCUMENT, web_app)[path][method]
    headers = bearer(tokens["admin"])

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def requests(case) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

    requests()


def _api_routes(routes) -> set[tuple[str, str]]:
    """(method, path) of the documented /api/v1 routes, through included routers (FastAPI keeps them nested)."""
    found = set()
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            found |= _api_routes(nested.routes)
        elif getattr(route, "include_in_schema", False) and route.path.startswith("/api/v1/"):
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


def test_every_api_route_is_fuzzed():
    """The document lists every /api/v1 route the app serves, so the loop above reaches each."""
    app = create_app(validate({}, environ=SECRETS), Database("sqlite://"), Health())
    served = _api_routes(app.routes)
    assert {("GET", "/api/v1/board/posts"), ("POST", "/api/v1/cases")} <= served <= set(OPERATIONS)
