"""``run()``: serve the API with uvicorn, its logs in the project's structured stream."""

from __future__ import annotations

import uvicorn

from edgecloud.adapters.httpserver import SlowClientLimits, protocol_class
from edgecloud.cloud.api.app import create_app
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core.logging import configure_logging


def run(settings: CloudSettings, access_log: bool = True, run_migrations: bool = True) -> None:
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, run_migrations=run_migrations, freeze_gc=True)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep configure_logging's handler: one JSON stream
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        http=protocol_class(
            SlowClientLimits(settings.api_header_timeout_s, settings.api_body_timeout_s)
        ),
        limit_concurrency=settings.api_max_connections,
    )
