"""The Discourse backend: see docs/discourse.md."""
from bridge.forum.discourse.client import Cursor, DiscourseForum, ForumRateLimited
from bridge.forum.discourse.webhook import (
    make_webhook_router,
    router_from_config,
    sign,
    verify_signature,
)

__all__ = ["Cursor", "DiscourseForum", "ForumRateLimited", "make_webhook_router",
           "router_from_config", "sign", "verify_signature"]
