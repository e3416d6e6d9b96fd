"""The desk's fixtures (an app with a user per role, a test client, the sign-in throttle's clock)."""
from tests.desk.conftest import client, clock, desk_app, desk_config, people  # noqa: F401
