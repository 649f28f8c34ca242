"""Edge agent: MQTT ingest, local inference, local database, events out."""

from __future__ import annotations

from typing import Any

import typer

from edgecloud.cli._options import settings_command
from edgecloud.core.settings import BaseRoleSettings, MqttSettings
from edgecloud.edge.device_settings import DeviceAgentFields
from edgecloud.edge.inference.settings import InferenceFields
from edgecloud.edge.models.settings import CloudLinkFields, ModelAgentFields
from edgecloud.edge.settings import EdgeSettings

app = typer.Typer(
    help="Edge agent: MQTT ingest, local inference, local database, events out.",
    no_args_is_help=True,
)

# field -> the flag name it had before the options were generated (kept; the field's works too)
FLAG_NAMES = {"node_labels": "labels"}
PANELS: dict[type, str] = {
    MqttSettings: "MQTT",
    InferenceFields: "Inference",
    CloudLinkFields: "Cloud link",
    ModelAgentFields: "Model agent",
    DeviceAgentFields: "Device agent",
    BaseRoleSettings: "Logging",
}


@app.command("run")
@settings_command(EdgeSettings, names=FLAG_NAMES, panels=PANELS)
def run(flags: dict[str, Any]) -> None:
    """Run one edge agent: subscribe devices/+/telemetry (QoS 1, persistent session), validate,
    infer in micro-batches, commit readings and dead letters in one transaction, THEN
    acknowledge, THEN publish reading events (outbox) to edgecloud/{node}/events/reading.

    Every option is a field of EdgeSettings (edge/settings.py): a flag wins over its
    environment variable, which wins over the default. More: docs/edge-agent.md.

    Dapr (docs/dapr.md): --dapr-http-port / --dapr-grpc-port (the sidecar; 0: none) publish
    anomaly / escalation decisions on --dapr-pubsub; --dapr-secret-store reads database-url /
    mqtt-password from it (wins over the environment, flags win over both).
    """
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.core.errors import ConfigError, TransportError
    from edgecloud.core.logging import bind_global, configure_logging

    try:
        settings = EdgeSettings(**flags)
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    bind_global(node_id=settings.node_id)
    if settings.dapr_grpc_port and settings.dapr_secret_store:
        # Dapr secrets win over the environment, flags over both (docs/dapr.md)
        from edgecloud.adapters.dapr import DaprConfig
        from edgecloud.edge.dapr_secrets import dapr_secrets

        dapr = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
        found = dapr_secrets(dapr, settings.dapr_secret_store, set(flags))
        if found:
            settings = EdgeSettings(**{**flags, **found})

    from edgecloud.edge.main import main

    try:
        main(settings)
    except (ConfigError, TransportError) as exc:
        settings_error(exc)


def settings_flags(params: dict[str, Any]) -> dict[str, Any]:
    """Parsed ``edge run`` parameters as EdgeSettings keyword arguments (unset flags left out)."""
    field_of: dict[str, str] = run.field_of  # type: ignore[attr-defined]
    return {field_of[k]: v for k, v in params.items() if v is not None}
