"""Cloud services: REST API + dashboard, Kafka worker."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgecloud.cli._common import not_yet

app = typer.Typer(help="Cloud services: REST API + dashboard, Kafka worker.", no_args_is_help=True)


@app.command("api")
def api(
    host: Annotated[
        str | None, typer.Option(help="listen address (env EDGECLOUD_API_HOST, default 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="listen port (env EDGECLOUD_API_PORT, default 8400)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="cloud database, postgresql+psycopg://... (env EDGECLOUD_DATABASE_URL)"),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            help="largest request body; 413 above (env EDGECLOUD_MAX_BODY_BYTES, default 64 MiB)"
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="(env EDGECLOUD_LOG_LEVEL, default INFO)")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="json or text (env EDGECLOUD_LOG_FORMAT, default json)")
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="one log line per request")
    ] = True,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="upgrade the schema to head at start")
    ] = True,
) -> None:
    """Run the cloud REST API and the dashboard (http://HOST:PORT/).

    Every route but /healthz and the dashboard page needs a bearer token: create one with
    `edgecloud token create --scope read`.
    """
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.cloud.api.server import run
    from edgecloud.cloud.settings import CloudSettings
    from edgecloud.core.errors import ConfigError

    flags: dict[str, Any] = {
        "api_host": host,
        "api_port": port,
        "database_url": database_url,
        "max_body_bytes": max_body_bytes,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        settings = CloudSettings(**{k: v for k, v in flags.items() if v is not None})
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    run(settings, access_log=access_log, run_migrations=migrate)


@app.command("worker")
def worker() -> None:
    """worker (issue #5)."""
    not_yet("worker", 5)
