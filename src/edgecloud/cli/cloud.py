"""Cloud services: REST API + dashboard, Kafka worker."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgecloud.cli._common import LogFormatOption, LogLevelOption, TraceSampleOption

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
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
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
def worker(
    database_url: Annotated[
        str | None,
        typer.Option(help="cloud database, postgresql+psycopg://... (env EDGECLOUD_DATABASE_URL)"),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (env EDGECLOUD_KAFKA_BOOTSTRAP)"),
    ] = None,
    topic_prefix: Annotated[
        str | None,
        typer.Option(help="prefix of every Kafka topic (env EDGECLOUD_KAFKA_TOPIC_PREFIX)"),
    ] = None,
    group_id: Annotated[
        str | None,
        typer.Option(
            help="consumer group (env EDGECLOUD_KAFKA_GROUP_ID, default edgecloud-cloud-worker)"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="messages per DB transaction (env EDGECLOUD_WORKER_BATCH_SIZE, 2000)"),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve Prometheus /metrics here (env EDGECLOUD_WORKER_METRICS_PORT)"),
    ] = None,
    trace_sample: TraceSampleOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="upgrade the schema to head at start (env EDGECLOUD_WORKER_MIGRATE, default on)",
        ),
    ] = None,
) -> None:
    """Run the cloud Kafka worker: readings, heartbeats, model status and dead letters into
    the cloud database (idempotent, offsets stored after each DB commit), per-minute
    aggregates, and escalation of flagged readings to OPENAI_BASE_URL with OPENAI_API_KEY
    (escalation is off without a key). Librdkafka settings: EDGECLOUD_KAFKA_CONFIG (JSON);
    escalation tuning: EDGECLOUD_ESCALATION_* (see docs/cloud-worker.md).
    """
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.cloud.settings import CloudSettings
    from edgecloud.cloud.worker.service import run
    from edgecloud.core.errors import ConfigError, TransportError
    from edgecloud.core.logging import configure_logging

    flags: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic_prefix": topic_prefix,
        "kafka_group_id": group_id,
        "worker_batch_size": batch_size,
        "worker_metrics_port": metrics_port,
        "trace_sample": trace_sample,
        "log_level": log_level,
        "log_format": log_format,
        "worker_migrate": migrate,
    }
    try:
        settings = CloudSettings(**{k: v for k, v in flags.items() if v is not None})
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    try:
        run(settings)
    except (ConfigError, TransportError) as exc:
        settings_error(exc)
