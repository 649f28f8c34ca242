import pytest
from pydantic import ValidationError

from edgecloud.core.settings import KafkaSettings


def test_kafka_config_json_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    text = '{"linger.ms": 5, "sasl.mechanism": "SCRAM-SHA-512"}'
    monkeypatch.setenv("EDGECLOUD_KAFKA_CONFIG", text)
    assert KafkaSettings().kafka_config == {"linger.ms": 5, "sasl.mechanism": "SCRAM-SHA-512"}


def test_bad_kafka_config_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_KAFKA_CONFIG", "{bad")
    with pytest.raises(ValidationError, match="EDGECLOUD_KAFKA_CONFIG is not JSON"):
        KafkaSettings()
