"""Cloud services: REST API + dashboard, Kafka worker."""

from __future__ import annotations

from typing import Any

import typer

from edgecloud.cli._options import settings_command
from edgecloud.cloud.registry.settings import RegistryFields
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core.settings import BaseRoleSettings, KafkaSettings

app = typer.Typer(help="Cloud services: REST API + dashboard, Kafka worker.", no_args_is_help=True)

PANELS: dict[type, str] = {
    KafkaSettings: "Kafka",
    RegistryFields: "Registry and rollouts",
    BaseRoleSettings: "Logging",
}
_FIELDS = list(CloudSettings.model_fields)
# each command shows the tree's fields but the other command's own ones; old flag names kept
API_SKIP = [f for f in _FIELDS if f.startswith("worker_") or f == "kafka_group_id"]
API_NAMES = {
    "api_host": "host",
    "api_port": "port",
    "api_access_log": "access-log",
    "api_migrate": "migrate",
}
WORKER_SKIP = [
    f
    for f in _FIELDS
    if f.startswith("api_") or f == "max_body_bytes" or f in RegistryFields.model_fields
]
WORKER_NAMES = {
    "kafka_topic_prefix": "topic-prefix",
    "kafka_group_id": "group-id",
    "worker_batch_size": "batch-size",
    "worker_metrics_port": "metrics-port",
    "worker_migrate": "migrate",
}


def _tree(flags: dict[str, Any]) -> CloudSettings:
    """The settings tree from the given flags over Dapr secrets over the environment, with
    logging configured from it; a bad value ends the command with its reason."""
    from pydantic import ValidationError

    from edgecloud.cli._common import settings_error
    from edgecloud.cloud.dapr_secrets import with_dapr_secrets
    from edgecloud.core.errors import ConfigError
    from edgecloud.core.logging import configure_logging

    try:
        settings = CloudSettings(**flags)
        settings = with_dapr_secrets(settings, flags)  # the store wins over the env (dapr.md)
    except (ValidationError, ConfigError) as exc:
        settings_error(exc)
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command("api")
@settings_command(CloudSettings, names=API_NAMES, skip=API_SKIP, panels=PANELS)
def api(flags: dict[str, Any]) -> None:
    """Run the cloud REST API and the dashboard (http://HOST:PORT/).

    Every route but /healthz and the dashboard page needs a bearer token: create one with
    `edgecloud token create --scope read`. Every option is a field of CloudSettings
    (cloud/settings.py): a flag wins over its environment variable, which wins over the default.
    """
    from edgecloud.cloud.main import api as main

    main(_tree(flags))


@app.command("worker")
@settings_command(CloudSettings, names=WORKER_NAMES, skip=WORKER_SKIP, panels=PANELS)
def worker(flags: dict[str, Any]) -> None:
    """Run the cloud Kafka worker: readings, heartbeats, model status and dead letters into
    the cloud database (idempotent, offsets stored after each DB commit), per-minute
    aggregates, and escalation of flagged readings to OPENAI_BASE_URL with OPENAI_API_KEY
    (escalation is off without a key). Every option is a field of CloudSettings
    (cloud/settings.py); see docs/cloud-worker.md.
    """
    from edgecloud.cli._common import settings_error
    from edgecloud.cloud.main import worker as main
    from edgecloud.core.errors import ConfigError, TransportError

    settings = _tree(flags)
    try:
        main(settings)
    except (ConfigError, TransportError) as exc:
        settings_error(exc)
