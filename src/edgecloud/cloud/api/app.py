"""The FastAPI application: ``create_app(settings)``.

The lifespan builds the engine (and runs the Alembic migrations unless told not to) and the
token verifier; they live on ``app.state.edgecloud`` (``deps.AppState``), never in a module
global, so tests can run several apps side by side.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from edgecloud import __version__
from edgecloud.adapters.dapr import DaprConfig
from edgecloud.cloud.api.deps import AppState
from edgecloud.cloud.api.errors import install_error_handlers
from edgecloud.cloud.api.fastpath import AggregatesFastPath
from edgecloud.cloud.api.hardening import AssetFiles, SecurityHeaders, StrictJson, install_docs
from edgecloud.cloud.api.middleware import ApiMetrics, BodyLimit, RequestMetrics
from edgecloud.cloud.api.pgpool import AsyncPgPool
from edgecloud.cloud.api.routes import ROUTERS
from edgecloud.cloud.api.routes.metrics import FleetCollector
from edgecloud.cloud.auth import TokenVerifier
from edgecloud.cloud.dapr_out import DaprMetrics, DaprOut
from edgecloud.cloud.dashboard import ASSETS_DIR
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.rollouts import runtime as models_runtime
from edgecloud.cloud.settings import CloudSettings
from edgecloud.cloud.transitions import TransitionPublisher

log = logging.getLogger("edgecloud.cloud.api")

DESCRIPTION = """REST API of the edgecloud cloud: devices, readings, per-minute aggregates,
anomalies with their escalation, edge nodes. Every route but `/healthz` and the dashboard page
needs `Authorization: Bearer <token>` (`edgecloud token create --scope read`)."""


def api_engine(url: str, pool_size: int = 10) -> Engine:
    """The API only reads (and writes single token rows): on Postgres it runs in autocommit
    mode, so a request costs no BEGIN / ROLLBACK round trips, and without pre-ping (a
    connection that died is invalidated and the request answers 503; the next one reconnects).
    """
    if url.startswith(("postgresql", "postgres:")):
        return make_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
            pool_recycle=1800,
            isolation_level="AUTOCOMMIT",
        )
    return make_engine(url)


def transition_publisher(
    settings: CloudSettings, registry: CollectorRegistry
) -> TransitionPublisher | None:
    """Rollout and node transitions through the API's Dapr sidecar (docs/dapr.md), if any."""
    if not settings.dapr_enabled:
        return None
    config = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
    out = DaprOut(config, "pubsub", settings.dapr_pubsub, DaprMetrics(registry))
    return TransitionPublisher(out, settings.dapr_topic_prefix)


class EdgecloudApp(FastAPI):
    """FastAPI, with the aggregates fast path (``fastpath.py``) tried before the middleware
    stack; what it does not answer goes through the stack and the routes as usual."""

    fast: AggregatesFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast
        if fast is not None and fast.wants(scope):
            scope["app"] = self
            state = getattr(self.state, "edgecloud", None)
            if await fast.serve(state, scope, send):
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: CloudSettings, run_migrations: bool = True, freeze_gc: bool = False
) -> FastAPI:
    """``freeze_gc`` (the server process, not tests that build several apps): once started, move
    every object alive (modules, routes, models, metadata: about 200,000) to the garbage
    collector's permanent generation. A full collection walks them all otherwise: measured
    100 to 130 ms here, an event-loop stall each time one runs under load (the p99)."""
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await run_in_threadpool(migrate, settings.database_url)
        engine = api_engine(settings.database_url, settings.api_db_pool)
        collector = FleetCollector(engine)
        registry.register(collector)
        pg = (
            AsyncPgPool(settings.database_url, size=settings.api_db_connections)
            if engine.dialect.name == "postgresql"
            else None
        )
        app.state.edgecloud = AppState(
            settings=settings,
            engine=engine,
            verifier=TokenVerifier(engine),
            registry=registry,
            pg=pg,
        )
        app.state.models = await models_runtime.start(
            settings.database_url,
            settings.registry_settings(),
            transitions=transition_publisher(settings, registry),
        )  # issue 6; transitions on Dapr pub/sub: issue 13
        ticks = models_runtime.TicksCollector(app.state.models)
        registry.register(ticks)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        log.info("cloud api ready", extra={"database": engine.url.render_as_string()})
        try:
            yield
        finally:
            await models_runtime.stop(app.state.models)
            registry.unregister(ticks)
            registry.unregister(collector)
            if pg is not None:
                await pg.close()
            engine.dispose()

    app = EdgecloudApp(
        title="edgecloud cloud API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs: Swagger UI from local assets, not a CDN
        redoc_url=None,
        redirect_slashes=False,  # a redirect would echo the request's Host header
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dashboard", AssetFiles(directory=ASSETS_DIR), name="dashboard")
    docs_hashes = install_docs(app)
    metrics = ApiMetrics(registry)
    app.fast = AggregatesFastPath(metrics)  # before the middleware stack, see fastpath.py
    app.add_middleware(StrictJson)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(SecurityHeaders, docs_script_hashes=docs_hashes)
    return app
