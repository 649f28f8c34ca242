"""``KafkaConnection``: the one place Kafka client settings come from (core/kafka.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgecloud.core.errors import ConfigError
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.settings import KafkaSettings
from edgecloud.sync.settings import BridgeSettings

ROOT = Path(__file__).resolve().parents[3]


def test_plaintext_config_is_bootstrap_and_protocol_then_extra() -> None:
    conn = KafkaConnection("k1:9092,k2:9092", extra={"linger.ms": 5})
    assert conn.client_config(**{"group.id": "g"}) == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "PLAINTEXT",
        "linger.ms": 5,
        "group.id": "g",
    }
    assert conn.env() == {
        "EDGECLOUD_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "EDGECLOUD_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    }


def test_sasl_password_comes_from_its_file_and_never_shows(tmp_path: Path) -> None:
    secret = tmp_path / "bridge"
    secret.write_text("s3cret-pw\n")
    conn = KafkaConnection("k:9092").as_user("bridge", password_file=str(secret))
    conf = conn.client_config()
    assert (conf["security.protocol"], conf["sasl.mechanism"]) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )
    assert (conf["sasl.username"], conf["sasl.password"]) == ("bridge", "s3cret-pw")
    assert "s3cret-pw" not in repr(conn)
    assert "s3cret-pw" not in str(conn.describe())
    assert conn.describe()["password_file"] == str(secret)
    env = conn.env()
    assert env["EDGECLOUD_KAFKA_SASL_PASSWORD_FILE"] == str(secret)
    assert "s3cret-pw" not in str(env)
    secret.write_text("rotated")  # read at each client set-up
    assert conn.client_config()["sasl.password"] == "rotated"


def test_env_round_trips_through_the_role_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "worker"
    secret.write_text("pw")
    conn = KafkaConnection("k:9092").as_user("worker", password_file=str(secret))
    for key, value in conn.env().items():
        monkeypatch.setenv(key, value)
    assert KafkaSettings().kafka_connection() == conn
    assert BridgeSettings(node_id="n1").kafka_connection().client_config()["sasl.password"] == "pw"
    assert KafkaSettings(**conn.settings()).kafka_connection() == conn


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"security_protocol": "SASL_PLAINTEXT"}, "needs a SASL username"),
        ({"security_protocol": "SASL_SSL", "username": "u"}, "needs a password"),
        ({"security_protocol": "TLS"}, "is not one of"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "is not one of"),
    ],
)
def test_bad_connections_are_refused_with_a_reason(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaConnection("k:9092", **kwargs)  # type: ignore[arg-type]


def test_settings_name_the_variables_when_sasl_is_half_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGECLOUD_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("EDGECLOUD_KAFKA_SASL_USERNAME", "bridge")
    with pytest.raises(ConfigError, match=r"EDGECLOUD_KAFKA_.*needs a password"):
        KafkaSettings().kafka_connection()
    monkeypatch.setenv("EDGECLOUD_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/pw")
    with pytest.raises(ConfigError, match="/nonexistent/pw"):
        KafkaSettings().kafka_connection().client_config()


def test_no_hand_written_client_config_outside_core_kafka() -> None:
    """Every Kafka client takes its connection from ``KafkaConnection.client_config``."""
    needle = re.compile(r"""["']""" + re.escape("bootstrap" + ".servers") + r"""["']""")
    allowed = {ROOT / "src/edgecloud/core/kafka.py", Path(__file__).resolve()}
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("src", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in allowed and needle.search(path.read_text())
    ]
    assert offenders == []
