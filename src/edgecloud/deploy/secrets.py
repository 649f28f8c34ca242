"""The values of the ``edgecloud-edge`` / ``edgecloud-cloud`` Secrets (keys of k3s/README.md).

A value already on the cluster is kept, one given by the operator wins, anything else is
generated; derived values (Mosquitto's hashed password file, Dapr's MQTT URL and the
configuration store's connection string) are rebuilt only
when a password they hold changed, so re-applying an unchanged node changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from edgecloud.core.errors import ValidationFailed

# account of the node's Mosquitto -> Secret key of its password
MQTT_ACCOUNTS = {
    "edge-agent": "agent-mqtt-password",
    "bridge": "bridge-mqtt-password",
    "dapr-edge": "dapr-mqtt-password",
}
GENERATED = ("db-password", "node-token", "agent-http-token", *MQTT_ACCOUNTS.values())
EDGE_KEYS = {
    *GENERATED,
    "operator-public-keys",
    "mosquitto-passwd",
    "dapr-mqtt-url",
    "dapr-config-connection-string",
}
# the cloud Dapr components' keys (k3s/cloud/dapr.yaml: cloud-pubsub, alert-webhook), defaults
# for the in-cluster Kafka of k3s/cloud/config.yaml without SASL and a webhook that discards
CLOUD_DAPR_DEFAULTS = {
    "kafka-brokers": "kafka.kafka.svc:9092",
    "kafka-auth-type": "none",
    "kafka-sasl-username": "",
    "kafka-sasl-password": "",
    "kafka-sasl-mechanism": "SHA-512",
    "alert-webhook-url": "http://127.0.0.1:9/alerts",
}
CLOUD_KEYS = {"database-url", "openai-api-key", *CLOUD_DAPR_DEFAULTS}
# mosquitto_passwd's format: $7$ = PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt
_ITERATIONS, _SALT_BYTES = 101, 12


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """One password as ``mosquitto_passwd`` writes it (``$7$101$<salt>$<hash>``)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_verify(password: str, hashed: str) -> bool:
    try:
        _, seven, iterations, salt, digest = hashed.split("$")
        raw_salt, want = base64.b64decode(salt), base64.b64decode(digest)
    except ValueError:
        return False
    if seven != "7":
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), raw_salt, int(iterations))
    return hmac.compare_digest(got, want)


def edge_secret(old: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """Every key of the edge Secret: ``given`` > ``old`` > generated."""
    unknown = set(given) - EDGE_KEYS
    if unknown:
        raise ValidationFailed("bad_secret", f"unknown edge secret keys: {sorted(unknown)}")
    data = {k: v for k, v in old.items() if k in EDGE_KEYS}
    data.update(given)
    for key in GENERATED:
        if not data.get(key):
            data[key] = secrets.token_urlsafe(24)
    data.setdefault("operator-public-keys", "")
    if not _passwd_matches(data.get("mosquitto-passwd", ""), data):
        data["mosquitto-passwd"] = "".join(
            f"{user}:{mosquitto_hash(data[key])}\n" for user, key in MQTT_ACCOUNTS.items()
        )
    data["dapr-mqtt-url"] = f"tcp://dapr-edge:{data['dapr-mqtt-password']}@mosquitto:1883"
    # the edge-config store (configuration.postgresql) on the node's Postgres, libpq form
    data["dapr-config-connection-string"] = (
        f"postgresql://edgecloud:{data['db-password']}@postgres:5432/edge"
    )
    return data


def _passwd_matches(text: str, data: dict[str, str]) -> bool:
    lines = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return set(lines) == set(MQTT_ACCOUNTS) and all(
        mosquitto_verify(data[key], lines[user]) for user, key in MQTT_ACCOUNTS.items()
    )


def cloud_secret(old: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """The cloud Secret: ``database-url`` must be given once (nothing to generate it from)."""
    unknown = set(given) - CLOUD_KEYS
    if unknown:
        raise ValidationFailed("bad_secret", f"unknown cloud secret keys: {sorted(unknown)}")
    data = {k: v for k, v in old.items() if k in CLOUD_KEYS}
    data.update({k: v for k, v in given.items() if v})
    if not data.get("database-url"):
        raise ValidationFailed(
            "missing_secret", "the cloud side needs --database-url (postgresql+psycopg://...)"
        )
    for key, default in CLOUD_DAPR_DEFAULTS.items():
        data.setdefault(key, default)
    if given.get("kafka-sasl-username") and "kafka-auth-type" not in given:
        data["kafka-auth-type"] = "password"  # SASL credentials given: Dapr's SASL auth
    if data["kafka-auth-type"] not in ("none", "password"):
        raise ValidationFailed("bad_secret", "kafka-auth-type must be none or password")
    if data["kafka-auth-type"] == "password" and not (
        data["kafka-sasl-username"] and data["kafka-sasl-password"]
    ):
        raise ValidationFailed(
            "missing_secret", "Kafka SASL needs --kafka-sasl-username and --kafka-sasl-password"
        )
    if data["kafka-sasl-mechanism"] not in ("SHA-512", "SHA-256", "PLAINTEXT"):
        raise ValidationFailed(
            "bad_secret", "--kafka-sasl-mechanism must be SHA-512, SHA-256 or PLAINTEXT"
        )
    return data
