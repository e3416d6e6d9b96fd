"""The FastAPI application: /healthz here, each capability's routes mounted from its folder."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bridge.config import Config
from bridge.db.engine import Database
from bridge.health import UP, Health, down
from bridge.live import LiveEvents
from bridge.web.site import install_site


def create_app(config: Config, db: Database, health: Health, *, live: LiveEvents | None = None) -> FastAPI:
    app = FastAPI(
        title="hotline-bridge",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.db = db
    app.state.health = health
    app.state.live = live or LiveEvents()
    install_site(app, config)  # sessions, CSRF refusal, `/` and the start page, shared by the capabilities' pages

    from bridge.cases.api import router as cases_router
    from bridge.departments.api import router as departments_router
    from bridge.desk import mount_desk
    from bridge.forum.builtin.api import router as board_router
    from bridge.forum.builtin.pages import mount_board
    from bridge.pbx.api import router as calls_router

    for router in (calls_router, cases_router, departments_router, board_router):
        app.include_router(router)
    mount_desk(app, config)
    mount_board(app)  # after the desk: spokespeople's pages share its session

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        try:
            await db.run(_ping_database, db)
            health.set("database", UP)
        except Exception as exc:  # the reason is the answer here
            health.set("database", down(str(exc).splitlines()[0][:200]))
        snapshot = health.snapshot()
        # 503 only when nothing can work (no database); a PBX or forum outage is "degraded".
        database_up = health.get("database") == UP
        return JSONResponse(snapshot, status_code=200 if database_up else 503)

    return app


def _ping_database(db: Database) -> None:
    from sqlalchemy import text

    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
