"""Settings shared by the roles. Each role composes these into its own class
(``edge/settings.py``, ``sync/settings.py``, ``cloud/settings.py``), built once in ``main()``.

Every field reads from the environment with the ``EDGECLOUD_`` prefix, e.g. ``mqtt_url`` from
``EDGECLOUD_MQTT_URL``. Flags override the environment; the defaults point at the local dev
stack (``edgecloud dev up``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from edgecloud.core.errors import ConfigError
from edgecloud.core.kafka import KafkaConnection

DEV_SECRET = "changeme-dev"  # the only default secret; refused when EDGECLOUD_ENV=production


class BaseRoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="production refuses the development default secrets"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["json", "text"] = Field(
        "json", description="one JSON object per line, or text"
    )
    trace_sample: int = Field(
        0,
        ge=0,
        description="log one line per hop for 1 reading in N, chosen by trace id so that every "
        "hop logs the same readings (edgecloud trace); 1 = every reading, 0 = off",
    )

    def refuse_dev_secret(self, name: str, value: str | None) -> None:
        if self.env == "production" and value == DEV_SECRET:
            raise ConfigError(f"{name} is the development default; set a real secret")


MQTT_SESSION_EXPIRY_S = 7 * 24 * 3600  # default persistent-session expiry (the MQTT adapter's too)


class MqttClientSettings(BaseSettings):
    """Which MQTT client and how long a persistent session lasts: fields of every role's MQTT
    settings, and read on their own (``mqtt_client_options``) by the tools that open MQTT
    connections outside a role (bench, simulate, dev). The adapter itself reads no environment.
    """

    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    mqtt_client: Literal["native", "paho"] = Field(
        "native", description="MQTT client: edgecloud's native one, or paho"
    )
    mqtt_session_expiry_s: int = Field(
        MQTT_SESSION_EXPIRY_S,
        ge=1,
        le=0xFFFFFFFF,
        description="how long the broker keeps a subscriber's persistent session while it is away",
    )

    def client_options(self) -> dict[str, Any]:
        """The ``MqttConfig`` keywords these settings give."""
        return {"client": self.mqtt_client, "session_expiry_s": self.mqtt_session_expiry_s}


def mqtt_client_options() -> dict[str, Any]:
    """``MqttConfig`` keywords from ``EDGECLOUD_MQTT_CLIENT`` / ``EDGECLOUD_MQTT_SESSION_EXPIRY_S``
    for a tool's connection; ``ConfigError`` naming the variable when one is invalid."""
    try:
        return MqttClientSettings().client_options()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "EDGECLOUD_" + str(first["loc"][0]).upper() if first["loc"] else "MQTT settings"
        raise ConfigError(f"{name}: {first['msg']}") from None


class MqttSettings(MqttClientSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    mqtt_url: str = Field("mqtt://127.0.0.1:11883", description="mqtt:// or mqtts:// URL")
    mqtt_username: str | None = Field(None, description="broker account (or in the URL)")
    mqtt_password: str | None = Field(None, description="password of the broker account")
    mqtt_ca_file: str | None = Field(None, description="CA bundle for mqtts://")
    mqtt_cert_file: str | None = Field(None, description="TLS client certificate")
    mqtt_key_file: str | None = Field(None, description="TLS client key")
    mqtt_client_id: str | None = Field(None, description="defaults to a name from role and node")
    mqtt_keepalive_s: int = Field(30, description="MQTT keepalive, seconds")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, v: str) -> str:
        if not v.startswith(("mqtt://", "mqtts://", "tcp://", "ssl://")):
            raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
        return v


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers")
    kafka_topic_prefix: str = Field("", description="prefix for every Kafka topic name")
    # NoDecode: our validator parses the JSON, so a bad value gets our message, not a decode crash.
    kafka_config: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description="extra librdkafka settings as JSON, e.g. SASL/SCRAM or TLS",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol; SASL_* needs a SASL user and password"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user (Kafka principal)")
    kafka_sasl_password: str | None = Field(
        None, description="SASL password (prefer EDGECLOUD_KAFKA_SASL_PASSWORD_FILE)"
    )
    kafka_sasl_password_file: str | None = Field(
        None, description="file holding the SASL password, read at each connection set-up"
    )

    @field_validator("kafka_config", mode="before")
    @classmethod
    def _json_dict(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"EDGECLOUD_KAFKA_CONFIG is not JSON: {exc}") from exc
        return v

    def kafka_connection(self) -> KafkaConnection:
        """Every Kafka client of the role is built from this (``core/kafka.py``)."""
        try:
            return KafkaConnection(
                self.kafka_bootstrap,
                self.kafka_security_protocol,
                self.kafka_sasl_mechanism,
                self.kafka_sasl_username,
                self.kafka_sasl_password,
                self.kafka_sasl_password_file,
                dict(self.kafka_config),
            )
        except ConfigError as exc:
            raise ConfigError(f"EDGECLOUD_KAFKA_*: {exc}") from exc


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    database_url: str = Field(
        "sqlite:///edgecloud.db",
        description="SQLAlchemy URL: postgresql+psycopg://... or sqlite:///file.db",
    )

    @model_validator(mode="after")
    def _normalise_driver(self) -> DatabaseSettings:
        url = self.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            self.database_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return self


def parse_labels(text: str | dict[str, str]) -> dict[str, str]:
    """``"site=a,zone=b"`` -> ``{"site": "a", "zone": "b"}`` (dicts pass through)."""
    if isinstance(text, dict):
        return text
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"label {part!r} is not key=value")
        key, value = part.split("=", 1)
        labels[key.strip()] = value.strip()
    return labels
