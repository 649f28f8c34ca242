"""Shared settings: environment parsing (EDGECLOUD_*), defaults, the production guard."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from edgecloud.core.errors import ConfigError
from edgecloud.core.settings import (
    DEV_SECRET,
    BaseRoleSettings,
    DatabaseSettings,
    KafkaSettings,
    MqttSettings,
    mqtt_client_options,
    parse_labels,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EDGECLOUD_"):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_dev_stack() -> None:
    assert MqttSettings().mqtt_url == "mqtt://127.0.0.1:11883"
    assert KafkaSettings().kafka_bootstrap == "127.0.0.1:19092"
    assert KafkaSettings().kafka_config == {}
    assert BaseRoleSettings().env == "development"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_MQTT_URL", "mqtts://broker:8883")
    monkeypatch.setenv("EDGECLOUD_MQTT_USERNAME", "edge-agent")
    monkeypatch.setenv("EDGECLOUD_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("EDGECLOUD_KAFKA_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("EDGECLOUD_LOG_FORMAT", "text")
    mqtt, kafka = MqttSettings(), KafkaSettings()
    assert (mqtt.mqtt_url, mqtt.mqtt_username) == ("mqtts://broker:8883", "edge-agent")
    assert (kafka.kafka_bootstrap, kafka.kafka_topic_prefix) == ("k1:9092,k2:9092", "t1.")
    assert BaseRoleSettings().log_format == "text"


def test_kafka_config_json_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "EDGECLOUD_KAFKA_CONFIG",
        '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "linger.ms": 5}',
    )
    assert KafkaSettings().kafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "linger.ms": 5,
    }


def test_kafka_config_not_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # From a flag (a string argument) the field validator names the variable.
    with pytest.raises(ValidationError, match="EDGECLOUD_KAFKA_CONFIG is not JSON"):
        KafkaSettings(kafka_config="{not json")  # type: ignore[arg-type]
    assert KafkaSettings(kafka_config="").kafka_config == {}  # type: ignore[arg-type]
    # From the environment pydantic-settings decodes first; it still refuses, naming the field.
    monkeypatch.setenv("EDGECLOUD_KAFKA_CONFIG", "{not json")
    with pytest.raises(ValueError, match="kafka_config"):
        KafkaSettings()


def test_mqtt_url_scheme_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_MQTT_URL", "http://broker")
    with pytest.raises(ValidationError, match="mqtt://"):
        MqttSettings()


def test_bad_env_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_ENV", "staging")
    with pytest.raises(ValidationError):
        BaseRoleSettings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("sqlite:///edge.db", "sqlite:///edge.db"),
    ],
)
def test_database_url_driver_is_normalised(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("EDGECLOUD_DATABASE_URL", url)
    assert DatabaseSettings().database_url == expected


def test_production_refuses_the_dev_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    BaseRoleSettings().refuse_dev_secret("EDGECLOUD_X", DEV_SECRET)  # development: allowed
    monkeypatch.setenv("EDGECLOUD_ENV", "production")
    settings = BaseRoleSettings()
    with pytest.raises(ConfigError, match="EDGECLOUD_X"):
        settings.refuse_dev_secret("EDGECLOUD_X", DEV_SECRET)
    settings.refuse_dev_secret("EDGECLOUD_X", "a-real-secret")
    settings.refuse_dev_secret("EDGECLOUD_X", None)


def test_labels() -> None:
    assert parse_labels("site=a, zone=b") == {"site": "a", "zone": "b"}
    assert parse_labels("") == {}
    assert parse_labels("k=v=w") == {"k": "v=w"}
    assert parse_labels({"x": "y"}) == {"x": "y"}
    with pytest.raises(ConfigError):
        parse_labels("site")


def test_tools_read_the_mqtt_client_settings_and_the_adapter_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edgecloud.adapters.mqtt import MqttConfig

    monkeypatch.setenv("EDGECLOUD_MQTT_CLIENT", "paho")
    monkeypatch.setenv("EDGECLOUD_MQTT_SESSION_EXPIRY_S", "321")
    assert mqtt_client_options() == {"client": "paho", "session_expiry_s": 321}
    assert MqttSettings().client_options() == {"client": "paho", "session_expiry_s": 321}
    # the adapter's defaults are constants: only what it is given counts
    plain = MqttConfig.from_url("mqtt://h:1")
    assert (plain.client, plain.session_expiry_s) == ("native", 7 * 24 * 3600)
    given = MqttConfig.from_url("mqtt://h:1", **mqtt_client_options())
    assert (given.client, given.session_expiry_s) == ("paho", 321)


@pytest.mark.parametrize(
    ("name", "value"),
    [("EDGECLOUD_MQTT_CLIENT", "mosquitto"), ("EDGECLOUD_MQTT_SESSION_EXPIRY_S", "0"),
     ("EDGECLOUD_MQTT_SESSION_EXPIRY_S", "soon")],
)  # fmt: skip
def test_a_bad_mqtt_client_setting_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        mqtt_client_options()


def test_the_adapter_refuses_a_bad_client_or_expiry() -> None:
    from edgecloud.adapters.mqtt import MqttConfig

    with pytest.raises(ConfigError, match="client"):
        MqttConfig(client="mosquitto")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expiry"):
        MqttConfig(session_expiry_s=0)
