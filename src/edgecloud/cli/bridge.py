"""Sync bridge: edge MQTT events to cloud Kafka, store and forward."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgecloud.cli._common import LogFormatOption, LogLevelOption, TraceSampleOption

app = typer.Typer(
    help="Sync bridge: edge MQTT events to cloud Kafka, store and forward.", no_args_is_help=True
)


@app.command("run")
def run(
    node_id: Annotated[
        str | None, typer.Option(help="this node's id (env EDGECLOUD_NODE_ID, default edge-1)")
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(help="edge broker, mqtt[s]://host:port (env EDGECLOUD_MQTT_URL)"),
    ] = None,
    mqtt_username: Annotated[str | None, typer.Option(help="(env EDGECLOUD_MQTT_USERNAME)")] = None,
    mqtt_password: Annotated[str | None, typer.Option(help="(env EDGECLOUD_MQTT_PASSWORD)")] = None,
    mqtt_client_id: Annotated[
        str | None,
        typer.Option(
            help="persistent-session client id (env EDGECLOUD_MQTT_CLIENT_ID, "
            "default edgecloud-bridge-<node>)"
        ),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (env EDGECLOUD_KAFKA_BOOTSTRAP)"),
    ] = None,
    topic_prefix: Annotated[
        str | None,
        typer.Option(help="prefix of every Kafka topic (env EDGECLOUD_KAFKA_TOPIC_PREFIX)"),
    ] = None,
    kafka_config: Annotated[
        str | None,
        typer.Option(
            help="librdkafka settings as JSON, e.g. SASL/SCRAM or TLS (env EDGECLOUD_KAFKA_CONFIG)"
        ),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option(
            help="durable spool directory (env EDGECLOUD_SPOOL_DIR, "
            "default ~/.cache/edgecloud/spool/<node>)"
        ),
    ] = None,
    spool_max_bytes: Annotated[
        int | None,
        typer.Option(
            help="spool byte budget; above it MQTT acks are held "
            "(env EDGECLOUD_SPOOL_MAX_BYTES, default 1 GiB)"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="MQTT messages per fsync group (env EDGECLOUD_BATCH_SIZE, 2000)"),
    ] = None,
    batch_window_ms: Annotated[
        float | None,
        typer.Option(help="longest wait to fill a group (env EDGECLOUD_BATCH_WINDOW_MS, 2)"),
    ] = None,
    linger_ms: Annotated[
        float | None,
        typer.Option(help="producer linger.ms (env EDGECLOUD_KAFKA_LINGER_MS, 2)"),
    ] = None,
    compression: Annotated[
        str | None,
        typer.Option(help="lz4, zstd, snappy, gzip, none (env EDGECLOUD_KAFKA_COMPRESSION, lz4)"),
    ] = None,
    heartbeat_interval_s: Annotated[
        float | None,
        typer.Option(help="seconds between heartbeats (env EDGECLOUD_HEARTBEAT_INTERVAL_S, 10)"),
    ] = None,
    http_host: Annotated[
        str | None,
        typer.Option(help="address of /metrics, /healthz (env EDGECLOUD_BRIDGE_HTTP_HOST)"),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            help="port of /metrics, /healthz; 0 = off (env EDGECLOUD_BRIDGE_HTTP_PORT, 8460)"
        ),
    ] = None,
    trace_sample: TraceSampleOption = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the sync bridge of one edge node: subscribe edgecloud/+/events/# (QoS 1, persistent
    session, manual acks), spool every event durably BEFORE acking it, forward each event to
    Kafka (idempotent, acks=all) and drop it from the spool only on Kafka's delivery report.
    Also EDGECLOUD_MQTT_CA_FILE / _CERT_FILE / _KEY_FILE (TLS), EDGECLOUD_SPOOL_SEGMENT_BYTES,
    EDGECLOUD_SPOOL_MEMORY_BYTES, EDGECLOUD_KAFKA_QUEUE_MESSAGES; see docs/bridge.md.
    """
    import signal
    import threading

    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.core.errors import ConfigError, EdgecloudError
    from edgecloud.core.logging import bind_global, configure_logging
    from edgecloud.sync.bridge import Bridge
    from edgecloud.sync.settings import BridgeSettings

    flags: dict[str, Any] = {
        "node_id": node_id,
        "mqtt_url": mqtt_url,
        "mqtt_username": mqtt_username,
        "mqtt_password": mqtt_password,
        "mqtt_client_id": mqtt_client_id,
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic_prefix": topic_prefix,
        "kafka_config": kafka_config,
        "spool_dir": spool_dir,
        "spool_max_bytes": spool_max_bytes,
        "batch_size": batch_size,
        "batch_window_ms": batch_window_ms,
        "kafka_linger_ms": linger_ms,
        "kafka_compression": compression,
        "heartbeat_interval_s": heartbeat_interval_s,
        "bridge_http_host": http_host,
        "bridge_http_port": http_port,
        "trace_sample": trace_sample,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        settings = BridgeSettings(**{k: v for k, v in flags.items() if v is not None})
        settings.refuse_dev_secret("EDGECLOUD_MQTT_PASSWORD", settings.mqtt_password)
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    bind_global(node_id=settings.node_id, role="bridge")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        Bridge(settings, stop, tune_gc=True).run()
    except EdgecloudError as exc:
        settings_error(exc)
