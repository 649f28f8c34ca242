"""Sync bridge: edge MQTT events to cloud Kafka, store and forward."""

from __future__ import annotations

from typing import Any

import typer

from edgecloud.cli._options import settings_command
from edgecloud.core.settings import BaseRoleSettings, KafkaSettings, MqttSettings
from edgecloud.sync.settings import BridgeSettings

app = typer.Typer(
    help="Sync bridge: edge MQTT events to cloud Kafka, store and forward.", no_args_is_help=True
)

# field -> the flag name it had before the options were generated (kept; the field's works too)
FLAG_NAMES = {
    "kafka_topic_prefix": "topic-prefix",
    "kafka_linger_ms": "linger-ms",
    "kafka_compression": "compression",
    "bridge_http_host": "http-host",
    "bridge_http_port": "http-port",
}
PANELS: dict[type, str] = {
    MqttSettings: "MQTT",
    KafkaSettings: "Kafka",
    BaseRoleSettings: "Logging",
}


@app.command("run")
@settings_command(BridgeSettings, names=FLAG_NAMES, panels=PANELS)
def run(flags: dict[str, Any]) -> None:
    """Run the sync bridge of one edge node: subscribe edgecloud/+/events/# (QoS 1, persistent
    session, manual acks), spool every event durably BEFORE acking it, forward each event to
    Kafka (idempotent, acks=all) and drop it from the spool only on Kafka's delivery report.

    Every option is a field of BridgeSettings (sync/settings.py): a flag wins over its
    environment variable, which wins over the default. More: docs/bridge.md.
    """
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.core.errors import ConfigError, EdgecloudError
    from edgecloud.core.logging import bind_global, configure_logging
    from edgecloud.sync.main import main

    try:
        settings = BridgeSettings(**flags)
        settings.refuse_dev_secret("EDGECLOUD_MQTT_PASSWORD", settings.mqtt_password)
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    bind_global(node_id=settings.node_id, role="bridge")
    try:
        main(settings)
    except EdgecloudError as exc:
        settings_error(exc)
