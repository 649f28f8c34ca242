"""Edge agent: MQTT ingest, local inference, local database, events out."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgecloud.cli._common import LogFormatOption, LogLevelOption, TraceSampleOption

app = typer.Typer(
    help="Edge agent: MQTT ingest, local inference, local database, events out.",
    no_args_is_help=True,
)


def _opt(help_: str) -> Any:
    return typer.Option(help=help_)


@app.command("run")
def run(
    model: Annotated[
        str | None, _opt("model bundle folder loaded at start (env EDGECLOUD_MODEL)")
    ] = None,
    node_id: Annotated[
        str | None, _opt("this node's id (env EDGECLOUD_NODE_ID, default edge-1)")
    ] = None,
    labels: Annotated[
        str | None, _opt("node labels site=a,zone=b (env EDGECLOUD_NODE_LABELS)")
    ] = None,
    mqtt_url: Annotated[
        str | None,
        _opt(
            "edge broker, mqtt://host:port or mqtts:// (env EDGECLOUD_MQTT_URL, default mqtt://127.0.0.1:11883)"
        ),
    ] = None,
    mqtt_username: Annotated[str | None, _opt("(env EDGECLOUD_MQTT_USERNAME)")] = None,
    mqtt_password: Annotated[str | None, _opt("(env EDGECLOUD_MQTT_PASSWORD)")] = None,
    mqtt_client_id: Annotated[
        str | None,
        _opt(
            "persistent-session client id "
            "(env EDGECLOUD_MQTT_CLIENT_ID, default edgecloud-agent-<node id>)"
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        _opt(
            "local database, postgresql+psycopg://... or sqlite:///file.db "
            "(env EDGECLOUD_DATABASE_URL)"
        ),
    ] = None,
    operator_public_keys: Annotated[
        str | None,
        _opt(
            "trusted bundle signing keys: paths or base64 raw keys, comma separated "
            "(env EDGECLOUD_OPERATOR_PUBLIC_KEYS)"
        ),
    ] = None,
    batch_size: Annotated[
        int | None, _opt("readings per micro-batch (env EDGECLOUD_BATCH_SIZE, default 2000)")
    ] = None,
    batch_window_ms: Annotated[
        float | None,
        _opt("longest wait for a batch to fill (env EDGECLOUD_BATCH_WINDOW_MS, default 20)"),
    ] = None,
    max_payload_bytes: Annotated[
        int | None,
        _opt("largest telemetry payload (env EDGECLOUD_MAX_PAYLOAD_BYTES, default 65536)"),
    ] = None,
    events_per_message: Annotated[
        int | None,
        _opt("reading events per MQTT message (env EDGECLOUD_EVENTS_PER_MESSAGE, default 200)"),
    ] = None,
    heartbeat_interval_s: Annotated[
        float | None,
        _opt("seconds between heartbeats (env EDGECLOUD_HEARTBEAT_INTERVAL_S, default 10)"),
    ] = None,
    retention_hours: Annotated[
        float | None,
        _opt(
            "delete published readings older than this; 0 keeps all "
            "(env EDGECLOUD_RETENTION_HOURS, default 168)"
        ),
    ] = None,
    http_host: Annotated[
        str | None, _opt("local HTTP API address (env EDGECLOUD_HTTP_HOST, default 127.0.0.1)")
    ] = None,
    http_port: Annotated[
        int | None,
        _opt("local HTTP API port, 0 turns it off (env EDGECLOUD_HTTP_PORT, default 8410)"),
    ] = None,
    http_token: Annotated[
        str | None,
        _opt(
            "bearer token of POST /infer and GET /metrics; required when --http-host is not a "
            "loopback address (env EDGECLOUD_HTTP_TOKEN, default none)"
        ),
    ] = None,
    ts_max_past_s: Annotated[
        float | None,
        _opt(
            "oldest accepted reading ts, seconds before receipt; older: bad_timestamp "
            "(env EDGECLOUD_TS_MAX_PAST_S, default 2592000 = 30 days)"
        ),
    ] = None,
    ts_max_future_s: Annotated[
        float | None,
        _opt(
            "newest accepted reading ts, seconds after receipt; newer: bad_timestamp "
            "(env EDGECLOUD_TS_MAX_FUTURE_S, default 3600)"
        ),
    ] = None,
    trace_sample: TraceSampleOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
    migrate: Annotated[
        bool | None,
        typer.Option(
            "--migrate/--no-migrate",
            help="upgrade the local schema at start (env EDGECLOUD_MIGRATE, default on)",
        ),
    ] = None,
) -> None:
    """Run one edge agent: subscribe devices/+/telemetry (QoS 1, persistent session), validate,
    infer in micro-batches, commit readings and dead letters in one transaction, THEN
    acknowledge, THEN publish reading events (outbox) to edgecloud/{node}/events/reading.

    Inference tuning: EDGECLOUD_ORT_PROVIDERS (auto, or e.g. CUDAExecutionProvider,
    CPUExecutionProvider), EDGECLOUD_ORT_INTRA_OP_THREADS, EDGECLOUD_ORT_INTER_OP_THREADS,
    EDGECLOUD_ORT_ALLOW_SPINNING, EDGECLOUD_INFERENCE_MAX_BATCH. More: docs/edge-agent.md.

    Dapr (docs/dapr.md): EDGECLOUD_DAPR_HTTP_PORT / EDGECLOUD_DAPR_GRPC_PORT (the sidecar; 0:
    none) publish anomaly / escalation decisions on EDGECLOUD_DAPR_PUBSUB (edge-pubsub);
    EDGECLOUD_DAPR_SECRET_STORE reads database-url / mqtt-password from it (wins over env).
    """
    import signal

    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.core.errors import ConfigError, TransportError
    from edgecloud.core.logging import bind_global, configure_logging
    from edgecloud.edge.settings import EdgeSettings

    flags: dict[str, Any] = {
        "model": model, "node_id": node_id, "node_labels": labels, "mqtt_url": mqtt_url,
        "mqtt_username": mqtt_username, "mqtt_password": mqtt_password,
        "mqtt_client_id": mqtt_client_id, "database_url": database_url,
        "operator_public_keys": operator_public_keys, "batch_size": batch_size,
        "batch_window_ms": batch_window_ms, "max_payload_bytes": max_payload_bytes,
        "events_per_message": events_per_message, "heartbeat_interval_s": heartbeat_interval_s,
        "retention_hours": retention_hours, "http_host": http_host, "http_port": http_port,
        "log_level": log_level, "log_format": log_format, "migrate": migrate,
        "http_token": http_token, "ts_max_past_s": ts_max_past_s,
        "ts_max_future_s": ts_max_future_s,
        "trace_sample": trace_sample,
    }  # fmt: skip
    try:
        settings = EdgeSettings(**{k: v for k, v in flags.items() if v is not None})
        inference_settings = _inference_settings()
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    bind_global(node_id=settings.node_id)
    if settings.dapr_grpc_port and settings.dapr_secret_store:
        # Dapr secrets win over the environment, flags over both (docs/dapr.md)
        from edgecloud.adapters.dapr import DaprConfig
        from edgecloud.edge.dapr_secrets import dapr_secrets

        dapr = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
        given = {k for k, v in flags.items() if v is not None}
        found = dapr_secrets(dapr, settings.dapr_secret_store, given)
        if found:
            settings = EdgeSettings(
                **{**{k: v for k, v in flags.items() if v is not None}, **found}
            )

    from edgecloud.edge.agent import Agent
    from edgecloud.edge.migrations import migrate as migrate_db

    if settings.migrate:
        from sqlalchemy.exc import OperationalError

        try:
            migrate_db(settings.database_url)
        except OperationalError as exc:
            settings_error(ConfigError(f"local database unreachable: {str(exc).splitlines()[0]}"))
    agent = Agent(settings, inference_settings, tune_gc=True)

    def _stop(_signum: int, _frame: Any) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.run()
    except (ConfigError, TransportError) as exc:
        if not agent.stopping.is_set():
            settings_error(exc)


def _inference_settings() -> Any:
    try:
        from edgecloud.edge.inference import InferenceSettings
    except ImportError:  # no inference package in this build: the agent runs without models
        return None
    return InferenceSettings()
