"""The Discourse backend: see docs/discourse.md."""
from bridge.forum.discourse.client import Cursor, DiscourseForum
from bridge.forum.discourse.webhook import (
    make_webhook_router,
    router_from_config,
    sign,
    verify_signature,
)

__all__ = ["Cursor", "DiscourseForum", "make_webhook_router",
           "router_from_config", "sign", "verify_signature"]
