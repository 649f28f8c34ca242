"""Settings of the cloud API and worker from the Dapr secrets API
(``EDGECLOUD_DAPR_SECRET_STORE``, ``dev up`` sets ``local-secrets``).

The same rule as the agent's (``edge/dapr_secrets.py``): a key the store has **wins over the
environment variable**, a flag wins over both, and a key the store lacks leaves the
environment's value (the fallback). A sidecar that is not ready within ``READY_TIMEOUT_S`` is
logged and the environment is used.
"""

from __future__ import annotations

import logging
from typing import Any

from edgecloud.adapters.dapr import DaprConfig, read_secrets
from edgecloud.cloud.settings import CloudSettings

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 30.0
# setting -> secret key (the same key names in secrets.json, compose and Kubernetes Secrets)
SECRET_KEYS = {"database_url": "database-url", "openai_api_key": "openai-api-key"}


def with_dapr_secrets(settings: CloudSettings, flags: dict[str, Any]) -> CloudSettings:
    """``settings`` rebuilt with what the store has (flags given stay as they are)."""
    if not (settings.dapr_grpc_port and settings.dapr_secret_store):
        return settings
    given = {k: v for k, v in flags.items() if v is not None}
    keys = {k: v for k, v in SECRET_KEYS.items() if k not in given}
    store = settings.dapr_secret_store
    config = DaprConfig(settings.dapr_http_port, settings.dapr_grpc_port)
    found = read_secrets(config, store, keys, READY_TIMEOUT_S)
    if found is None:
        log.warning("dapr sidecar not ready: secrets from the environment", extra={"store": store})
        return settings
    if not found:
        return settings
    log.info("settings from dapr secrets", extra={"store": store, "settings": sorted(found)})
    return CloudSettings(**{**given, **found})
