"""``edgecloud bridge run``: the options are generated from ``BridgeSettings`` (one per field,
old flag names kept), and every flag reaches the component of the bridge that uses it: the spool,
the router, the producer's librdkafka config, the MQTT connection (issue 17 move 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from edgecloud.cli import app as cli_app
from edgecloud.cli.bridge import run
from edgecloud.sync.bridge import Bridge
from edgecloud.sync.settings import BridgeSettings


def run_command() -> Any:
    root: Any = typer.main.get_command(cli_app)
    return root.commands["bridge"].commands["run"]


def settings_from(args: list[str]) -> BridgeSettings:
    """What ``bridge run ARGS`` builds: the parsed flags over the environment."""
    params = run_command().make_context("run", args).params
    field_of: dict[str, str] = run.field_of  # type: ignore[attr-defined]
    return BridgeSettings(**{field_of[k]: v for k, v in params.items() if v is not None})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("EDGECLOUD_"):
            monkeypatch.delenv(name)


# The flags of ``bridge run`` before they were generated from BridgeSettings: none may be lost.
OLD_FLAGS = {
    "--node-id", "--mqtt-url", "--mqtt-username", "--mqtt-password", "--mqtt-client-id",
    "--kafka-bootstrap", "--topic-prefix", "--kafka-config", "--spool-dir", "--spool-max-bytes",
    "--batch-size", "--batch-window-ms", "--linger-ms", "--compression",
    "--heartbeat-interval-s", "--http-host", "--http-port", "--trace-sample", "--log-level",
    "--log-format",
}  # fmt: skip

SPOOL = "SPOOL"  # replaced by a folder under tmp_path
# field -> (flag arguments, the value the field must then hold): distinctive, none a default
VALUES: dict[str, tuple[list[str], Any]] = {
    "kafka_bootstrap": (["--kafka-bootstrap", "10.3.3.3:19999"], "10.3.3.3:19999"),
    "kafka_topic_prefix": (["--topic-prefix", "pq."], "pq."),
    "kafka_config": (["--kafka-config", '{"client.rack": "r-q"}'], {"client.rack": "r-q"}),
    "kafka_security_protocol": (["--kafka-security-protocol", "SASL_PLAINTEXT"], "SASL_PLAINTEXT"),
    "kafka_sasl_mechanism": (["--kafka-sasl-mechanism", "SCRAM-SHA-256"], "SCRAM-SHA-256"),
    "kafka_sasl_username": (["--kafka-sasl-username", "bridge-q"], "bridge-q"),
    "kafka_sasl_password": (["--kafka-sasl-password", "pw-q"], "pw-q"),
    "kafka_sasl_password_file": (["--kafka-sasl-password-file", "/k/pw-q"], "/k/pw-q"),
    "mqtt_url": (["--mqtt-url", "mqtt://10.9.8.6:18885"], "mqtt://10.9.8.6:18885"),
    "mqtt_username": (["--mqtt-username", "user-b"], "user-b"),
    "mqtt_password": (["--mqtt-password", "pass-b"], "pass-b"),
    "mqtt_ca_file": (["--mqtt-ca-file", "/k/ca-b.pem"], "/k/ca-b.pem"),
    "mqtt_cert_file": (["--mqtt-cert-file", "/k/c-b.pem"], "/k/c-b.pem"),
    "mqtt_key_file": (["--mqtt-key-file", "/k/c-b.key"], "/k/c-b.key"),
    "mqtt_client_id": (["--mqtt-client-id", "cid-b"], "cid-b"),
    "mqtt_keepalive_s": (["--mqtt-keepalive-s", "41"], 41),
    "mqtt_client": (["--mqtt-client", "paho"], "paho"),
    "mqtt_session_expiry_s": (["--mqtt-session-expiry-s", "888"], 888),
    "env": (["--env", "production"], "production"),
    "log_level": (["--log-level", "ERROR"], "ERROR"),
    "log_format": (["--log-format", "text"], "text"),
    "trace_sample": (["--trace-sample", "7"], 7),
    "node_id": (["--node-id", "edge-88"], "edge-88"),
    "spool_dir": (["--spool-dir", SPOOL], SPOOL),
    "spool_max_bytes": (["--spool-max-bytes", "7777777"], 7777777),
    "spool_segment_bytes": (["--spool-segment-bytes", "555555"], 555555),
    "spool_memory_bytes": (["--spool-memory-bytes", "444444"], 444444),
    "batch_size": (["--batch-size", "123"], 123),
    "batch_window_ms": (["--batch-window-ms", "4.5"], 4.5),
    "kafka_linger_ms": (["--linger-ms", "6.5"], 6.5),
    "kafka_compression": (["--compression", "zstd"], "zstd"),
    "kafka_queue_messages": (["--kafka-queue-messages", "12345"], 12345),
    "heartbeat_interval_s": (["--heartbeat-interval-s", "2.75"], 2.75),
    "bridge_http_host": (["--http-host", "127.0.0.9"], "127.0.0.9"),
    "bridge_http_port": (["--http-port", "18461"], 18461),
}


def test_no_flag_lost_and_one_flag_per_field() -> None:
    params = [p for p in run_command().params if p.param_type_name == "option"]
    names = {n for p in params for n in (*p.opts, *p.secondary_opts)}
    assert names >= OLD_FLAGS, f"flags lost: {sorted(OLD_FLAGS - names)}"
    field_of: dict[str, str] = run.field_of  # type: ignore[attr-defined]
    assert {field_of[p.name] for p in params if p.name != "help"} == set(
        BridgeSettings.model_fields
    )
    for field in BridgeSettings.model_fields:
        assert "--" + field.replace("_", "-") in names, field


@pytest.mark.usefixtures("clean_env")
def test_every_flag_reaches_the_bridge_components(tmp_path: Path) -> None:
    assert set(VALUES) == set(BridgeSettings.model_fields), "every field needs a value here"
    spool = tmp_path / "spool-q"
    args = [str(spool) if a == SPOOL else a for n in sorted(VALUES) for a in VALUES[n][0]]
    s = settings_from(args)
    for name, (_, want) in VALUES.items():
        got = getattr(s, name)
        assert got == (spool if want == SPOOL else want), name
    bridge = Bridge(s)
    try:
        assert bridge.spool.dir == spool  # an explicit spool dir is used as is
        assert (bridge.spool._segment_bytes, bridge.spool._memory_bytes) == (555555, 444444)
        assert bridge.router.topics["reading"] == "pq.edgecloud.readings"
        conf = bridge._conf
        conn = s.kafka_connection()  # every Kafka client's connection (core/kafka.py)
        assert conn.bootstrap == "10.3.3.3:19999"
        assert conf.items() >= conn.client_config().items()
        assert (conf["security.protocol"], conf["sasl.mechanism"]) == (
            "SASL_PLAINTEXT", "SCRAM-SHA-256"
        )  # fmt: skip
        assert (conf["sasl.username"], conf["client.rack"]) == ("bridge-q", "r-q")
        assert (conf["linger.ms"], conf["compression.type"]) == (6.5, "zstd")
        assert conf["queue.buffering.max.messages"] == 12345
        mqtt = bridge.mqtt_config()
        assert (mqtt.host, mqtt.port, mqtt.username, mqtt.password) == (
            "10.9.8.6", 18885, "user-b", "pass-b"
        )  # fmt: skip
        assert (mqtt.ca_file, mqtt.cert_file, mqtt.key_file) == (
            "/k/ca-b.pem", "/k/c-b.pem", "/k/c-b.key"
        )  # fmt: skip
        assert (mqtt.keepalive_s, mqtt.client, mqtt.session_expiry_s) == (41, "paho", 888)
        assert s.client_id == "cid-b"
        assert bridge._trace_every == 7
    finally:
        bridge.spool.close()


def test_help_names_the_env_of_every_field() -> None:
    from typer.testing import CliRunner

    out = CliRunner().invoke(cli_app, ["bridge", "run", "--help"], env={"COLUMNS": "400"}).output
    flat = " ".join(out.replace("│", " ").split())
    for field in BridgeSettings.model_fields:
        assert f"EDGECLOUD_{field.upper()}" in flat, field
