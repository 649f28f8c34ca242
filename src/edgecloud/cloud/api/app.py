"""The FastAPI application: ``create_app(settings)``.

The lifespan builds the engine (and runs the Alembic migrations unless told not to) and the
token verifier; they live on ``app.state.edgecloud`` (``deps.AppState``), never in a module
global, so tests can run several apps side by side.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from edgecloud import __version__
from edgecloud.cloud.api.deps import AppState
from edgecloud.cloud.api.errors import install_error_handlers
from edgecloud.cloud.api.middleware import BodyLimit, RequestMetrics
from edgecloud.cloud.api.routes import ROUTERS
from edgecloud.cloud.api.routes.metrics import FleetCollector
from edgecloud.cloud.auth import TokenVerifier
from edgecloud.cloud.dashboard import ASSETS_DIR
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.rollouts import runtime as models_runtime
from edgecloud.cloud.settings import CloudSettings

log = logging.getLogger("edgecloud.cloud.api")

DESCRIPTION = """REST API of the edgecloud cloud: devices, readings, per-minute aggregates,
anomalies with their escalation, edge nodes. Every route but `/healthz` and the dashboard page
needs `Authorization: Bearer <token>` (`edgecloud token create --scope read`)."""


def create_app(settings: CloudSettings, run_migrations: bool = True) -> FastAPI:
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await run_in_threadpool(migrate, settings.database_url)
        engine = make_engine(settings.database_url, pool_size=10, max_overflow=10)
        collector = FleetCollector(engine)
        registry.register(collector)
        app.state.edgecloud = AppState(
            settings=settings, engine=engine, verifier=TokenVerifier(engine), registry=registry
        )
        app.state.models = await models_runtime.start(settings.database_url)  # issue 6
        log.info("cloud api ready", extra={"database": engine.url.render_as_string()})
        try:
            yield
        finally:
            await models_runtime.stop(app.state.models)
            registry.unregister(collector)
            engine.dispose()

    app = FastAPI(
        title="edgecloud cloud API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dashboard", StaticFiles(directory=ASSETS_DIR), name="dashboard")
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=registry)
    return app
