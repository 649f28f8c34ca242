"""The Telegraf peer's configs: what the benchmark promises about the peer is what it runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecloud.bench import peer
from edgecloud.bench.bridge_peer import summary
from edgecloud.cli import app
from edgecloud.core.kafka import KafkaConnection


def bridge_config(buffer_dir: Path | None) -> dict:
    cfg = peer.BridgePeerConfig(
        mqtt_url="mqtt://127.0.0.1:25883",
        mqtt_username="admin",
        mqtt_password='p"w\\x',
        topic_in="bench/peer-1/events/reading",
        kafka=KafkaConnection("127.0.0.1:25092, 127.0.0.1:25093"),
        topic_out="p1.edgecloud.readings",
        buffer_dir=buffer_dir,
    )
    return tomllib.loads(cfg.render())


def test_bridge_peer_is_at_least_once_with_acks_all_and_disk_buffer(tmp_path: Path) -> None:
    conf = bridge_config(tmp_path / "buf")
    (mqtt,) = conf["inputs"]["mqtt_consumer"]
    assert mqtt["servers"] == ["tcp://127.0.0.1:25883"]
    assert mqtt["qos"] == 1 and mqtt["persistent_session"] is True
    assert mqtt["max_undelivered_messages"] == 1000
    assert mqtt["password"] == 'p"w\\x'  # quoted, not broken by the quote and backslash
    (kafka,) = conf["outputs"]["kafka"]
    assert kafka["brokers"] == ["127.0.0.1:25092", "127.0.0.1:25093"]
    assert kafka["required_acks"] == -1 and kafka["idempotent_writes"] is True
    assert kafka["routing_tag"] == "device_id"
    assert kafka["topic"] == "p1.edgecloud.readings"
    assert conf["agent"]["buffer_strategy"] == "disk"
    assert conf["agent"]["buffer_directory"] == str(tmp_path / "buf")
    # the payload passes through unchanged and the key is the event's device id
    assert kafka["template"] == '{{ .Field "value" }}'
    (regex,) = conf["processors"]["regex"]
    assert regex["fields"][0]["result_key"] == "device_id"


def test_bridge_peer_without_disk_buffer_keeps_memory() -> None:
    assert "buffer_strategy" not in bridge_config(None)["agent"]


def test_kafka_options_carry_sasl_scram_and_tls() -> None:
    lines = peer.kafka_options(
        KafkaConnection(
            "k:9094",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            username="bench",
            password="s3cret",
            extra={"ssl.ca.location": "/ca.pem"},
        )
    )
    conf = tomllib.loads("\n".join(lines))
    assert conf["brokers"] == ["k:9094"]
    assert conf["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (conf["sasl_username"], conf["sasl_password"]) == ("bench", "s3cret")
    assert conf["enable_tls"] is True and conf["tls_ca"] == "/ca.pem"
    plain = tomllib.loads("\n".join(peer.kafka_options(KafkaConnection("k:9092"))))
    assert "sasl_username" not in plain and "enable_tls" not in plain


def test_cloud_peer_reads_the_event_into_its_table() -> None:
    cfg = peer.CloudPeerConfig(
        kafka=KafkaConnection("k:9092"),
        topic_in="x.edgecloud.readings",
        group="g1",
        postgres_dsn="postgres://u:p@127.0.0.1:25432/db",
    )
    conf = tomllib.loads(cfg.render())
    (kc,) = conf["inputs"]["kafka_consumer"]
    assert kc["topics"] == ["x.edgecloud.readings"] and kc["consumer_group"] == "g1"
    (j,) = kc["json_v2"]
    assert j["measurement_name"] == "telegraf_readings"
    assert [f["path"] for f in j["field"]] == ["event_id", "data.seq"]
    assert conf["outputs"]["postgresql"][0]["connection"].endswith("/db")


def test_binary_missing_says_how_to_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDGECLOUD_TELEGRAF_BIN", raising=False)
    monkeypatch.setenv("EDGECLOUD_TELEGRAF_CACHE", str(tmp_path))
    with pytest.raises(peer.PeerMissing, match=r"scripts/build-telegraf\.sh"):
        peer.binary()
    exe = tmp_path / peer.VERSION / "telegraf"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert peer.binary() == exe


def test_cli_refuses_an_unknown_or_unbuilt_peer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGECLOUD_TELEGRAF_BIN", str(tmp_path / "nope"))
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "bridge", "--peer", "fluentbit"])
    assert res.exit_code == 2 and "unknown peer" in res.output
    res = runner.invoke(app, ["bench", "bridge", "--peer", "telegraf"])
    assert res.exit_code == 2 and "scripts/build-telegraf.sh" in res.output


def test_summary_takes_medians_and_ratios() -> None:
    def row(rate: float, p99: float, lost: int = 0) -> dict:
        return {
            "rate_per_s": rate, "p50_ms": 1.0, "p99_ms": p99, "cpu_us_per_event": 10.0,
            "rss_mb_peak": 50.0, "lost": lost, "duplicates": 0, "order_violations": 0,
        }  # fmt: skip

    s = summary(
        {
            "edgecloud": [row(9, 10), row(10, 30), row(30, 20)],
            "telegraf-disk": [row(4, 40), row(5, 80, 3), row(6, 60)],
        }
    )
    assert s["edgecloud"]["rate_per_s"] == 10 and s["telegraf-disk"]["rate_per_s"] == 5
    assert s["ratio_ours_to"]["telegraf-disk"]["rate_per_s"] == 2.0
    assert s["ratio_ours_to"]["telegraf-disk"]["p99_ms"] == round(20 / 60, 3)
    assert s["telegraf-disk"]["lost"] == 3 and s["edgecloud"]["lost"] == 0
    assert len(s["telegraf-disk"]["per_run"]) == 3


def test_cli_fleet_refuses_bad_sizes() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "fleet", "--nodes", "1000,lots"])
    assert res.exit_code == 2 and "not a list of integers" in res.output
    res = runner.invoke(app, ["bench", "fleet", "--nodes", "0"])
    assert res.exit_code == 2 and "sizes must be positive" in res.output
