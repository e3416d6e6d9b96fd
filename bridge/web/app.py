"""The FastAPI application: /healthz here, each installed capability's routes mounted from its folder."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bridge.capability import Runtime, load_capabilities
from bridge.config import Config
from bridge.db.engine import Database
from bridge.health import UP, Health, down
from bridge.live import LiveEvents
from bridge.web.site import install_site


def create_app(config: Config, db: Database, health: Health, *, live: LiveEvents | None = None,
               runtime: Runtime | None = None) -> FastAPI:
    """The app with every capability mounted, in capability order.

    ``runtime``: the daemon's (its links running); without it the installed capabilities are
    loaded afresh and mounted without links (tests, a bare web app).
    """
    if runtime is None:
        runtime = Runtime(config, db, health, live or LiveEvents(), capabilities=load_capabilities())
    app = FastAPI(
        title="hotline-bridge",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.db = db
    app.state.health = health
    app.state.live = runtime.live
    app.state.runtime = runtime
    install_site(app, config)  # sessions, CSRF refusal, `/` and the start page, shared by the capabilities' pages

    for capability in runtime.capabilities:
        capability.mount(app, runtime)

    probes = [(component, probe) for capability in runtime.capabilities
              for component, probe in capability.health_probes().items()]
    essential = [name for capability in runtime.capabilities for name in capability.essential_components]

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        for component, probe in probes:
            try:
                await db.run(probe, db)
                health.set(component, UP)
            except Exception as exc:  # the reason is the answer here
                health.set(component, down(str(exc).splitlines()[0][:200]))
        snapshot = health.snapshot()
        # 503 only when nothing can work (an essential component, the database); a PBX or forum
        # outage is "degraded".
        working = all(snapshot["components"].get(name, {}).get("state") == UP for name in essential)
        return JSONResponse(snapshot, status_code=200 if working else 503)

    return app
