"""Settings of the agent from the Dapr secrets API (``EDGECLOUD_DAPR_SECRET_STORE``).

With a sidecar and a secret store named, the agent asks its sidecar at start for the keys
below; a key the store has wins over the environment variable, a flag wins over both, and a
key the store lacks leaves the environment's value (the fallback). A sidecar that is not ready
within ``READY_TIMEOUT_S`` is logged and the environment is used.
"""

from __future__ import annotations

import logging

from edgecloud.adapters.dapr import DaprConfig, read_secrets

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 30.0
# setting -> secret key (the same key names in secrets.json, compose and Kubernetes Secrets)
SECRET_KEYS = {
    "database_url": "database-url",
    "mqtt_password": "mqtt-password",
    "node_token": "node-token",  # the model and device agents' EDGECLOUD_NODE_TOKEN
}


def dapr_secrets(config: DaprConfig, store: str, skip: set[str]) -> dict[str, str]:
    """setting name -> value for every key of ``SECRET_KEYS`` the store has (not ``skip``)."""
    keys = {k: v for k, v in SECRET_KEYS.items() if k not in skip}
    found = read_secrets(config, store, keys, READY_TIMEOUT_S)
    if found is None:
        log.warning("dapr sidecar not ready: secrets from the environment", extra={"store": store})
        return {}
    if found:
        log.info("settings from dapr secrets", extra={"store": store, "settings": sorted(found)})
    return found
