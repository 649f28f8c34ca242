"""The cloud's two processes, once their settings tree is built: ``api(settings)`` and
``worker(settings)``, the shape of ``edge/main.py`` and ``sync/main.py``.

The CLI (``edgecloud cloud api|worker``) only builds the tree (flags over Dapr secrets over the
environment) and configures logging. ``api`` serves the REST API and the dashboard with
uvicorn (which installs the signal handlers; the app's lifespan migrates when
``api_migrate``); ``worker`` migrates when ``worker_migrate``, installs the signal handlers and
runs the Kafka worker until SIGTERM / SIGINT, finishing the batch in hand.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from edgecloud.cloud.settings import CloudSettings

log = logging.getLogger(__name__)


def api(settings: CloudSettings) -> None:
    import uvicorn

    from edgecloud.adapters.httpserver import SlowClientLimits, protocol_class
    from edgecloud.cloud.api.app import create_app

    app = create_app(settings, run_migrations=settings.api_migrate, freeze_gc=True)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep configure_logging's handler: one JSON stream
        access_log=settings.api_access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        http=protocol_class(
            SlowClientLimits(settings.api_header_timeout_s, settings.api_body_timeout_s)
        ),
        limit_concurrency=settings.api_max_connections,
    )


def worker(settings: CloudSettings) -> None:
    from edgecloud.cloud.db import make_engine
    from edgecloud.cloud.escalation import EscalationRunner, publish_disabled
    from edgecloud.cloud.migrations import migrate
    from edgecloud.cloud.worker.metrics import WorkerMetrics
    from edgecloud.cloud.worker.service import build_worker
    from edgecloud.core.gctune import tune_gc

    if settings.worker_migrate:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url, pool_size=4)
    metrics = WorkerMetrics()
    if settings.worker_metrics_port is not None:
        metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
        log.info("worker metrics", extra={"port": settings.worker_metrics_port})
    escalation: EscalationRunner | None = None
    if settings.escalation_enabled:
        escalation = EscalationRunner(engine, settings, metrics)
        escalation.start()
    else:
        publish_disabled(engine)
        log.warning("escalation disabled: OPENAI_API_KEY is not set")
    loop = build_worker(settings, engine, metrics)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received, finishing the batch", extra={"signal": signum})
        loop.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tune_gc()
    try:
        loop.run()
    except Exception:  # process edge: say why before the process ends
        log.exception("worker failed")
        raise
    finally:
        loop.consumer.close()
        if loop.alerts is not None:
            loop.alerts.stop()
        if escalation is not None:
            escalation.stop()
        engine.dispose()
