"""BridgeSettings: flags over env over defaults; the CLI documents every setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecloud.cli import app
from edgecloud.sync.settings import BridgeSettings


def test_env_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGECLOUD_SPOOL_DIR", raising=False)
    monkeypatch.setenv("EDGECLOUD_NODE_ID", "edge-9")
    monkeypatch.setenv("EDGECLOUD_SPOOL_MAX_BYTES", "5000")
    monkeypatch.setenv("EDGECLOUD_KAFKA_CONFIG", '{"security.protocol": "SASL_SSL"}')
    s = BridgeSettings()
    assert s.client_id == "edgecloud-bridge-edge-9"
    assert s.node_spool_dir == Path.home() / ".cache" / "edgecloud" / "spool" / "edge-9"
    assert s.spool_max_bytes == 5000
    assert s.kafka_config == {"security.protocol": "SASL_SSL"}
    monkeypatch.setenv("EDGECLOUD_SPOOL_DIR", "/var/spool/x")
    assert BridgeSettings(spool_max_bytes=9999).node_spool_dir == Path("/var/spool/x")
    assert BridgeSettings(spool_max_bytes=9999).spool_max_bytes == 9999


def test_help_names_every_setting() -> None:
    out = CliRunner().invoke(app, ["bridge", "run", "--help"], env={"COLUMNS": "400"}).output
    for name in (
        "EDGECLOUD_SPOOL_DIR",
        "EDGECLOUD_SPOOL_MAX_BYTES",
        "EDGECLOUD_KAFKA_CONFIG",
        "EDGECLOUD_BRIDGE_HTTP_PORT",
        "EDGECLOUD_MQTT_URL",
        "EDGECLOUD_NODE_ID",
    ):
        assert name in out.replace("\n", " ").replace(" ", "") or name in out
