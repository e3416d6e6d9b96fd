"""The PBX as a capability: the AMI + FastAGI link, the call tracker's AMI subscription,
/api/v1/calls, the `sandbox` and `dialplan` commands, health "pbx" and the live topic "call".

With ``pbx.backend = "none"`` there is no link and health "pbx" stays "not configured".
"""
from __future__ import annotations

from bridge.capability import Capability, Runtime
from bridge.pbx.subscription import TRACKER


class PbxCapability(Capability):
    name = "pbx"
    order = 40
    ami = TRACKER
    health_components = ("pbx",)
    live_topics = ("call",)

    def commands(self):
        from bridge.pbx.dialplan_cli import dialplan
        from bridge.pbx.sandbox_cli import sandbox

        return (sandbox, dialplan)

    def links(self, runtime: Runtime):
        if runtime.config.pbx.backend == "none":
            return ()
        from bridge.pbx.service import PbxService

        # The tracker is the link's own listener; every other capability's listener follows it.
        return (("pbx", PbxService(runtime.config, runtime.db, runtime.health, runtime.live,
                                   listeners=runtime.ami_listeners, ami_subscription=runtime.ami_subscription)),)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.pbx.api import router

        app.include_router(router)
