"""Settings of the sync bridge (``edgecloud bridge run``), built once in the CLI and passed down.

Every field reads ``EDGECLOUD_<NAME>`` (``spool_dir`` from ``EDGECLOUD_SPOOL_DIR``); flags
override the environment; the defaults point at node ``edge-1`` of ``edgecloud dev up``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from edgecloud.core.readings import ID_PATTERN
from edgecloud.core.settings import BaseRoleSettings, KafkaSettings, MqttSettings


def default_spool_dir() -> Path:
    return Path.home() / ".cache" / "edgecloud" / "spool"


class BridgeSettings(BaseRoleSettings, MqttSettings, KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    spool_dir: Path = Field(
        default_factory=default_spool_dir,
        description="durable spool; one per bridge (default ~/.cache/edgecloud/spool/<node>)",
    )
    spool_max_bytes: int = Field(
        1024**3, ge=1024, description="spool byte budget; above it MQTT acks stop (backpressure)"
    )
    spool_segment_bytes: int = Field(
        64 * 1024**2, ge=4096, description="spool segment file size before rolling"
    )
    spool_memory_bytes: int = Field(
        64 * 1024**2, ge=0, description="unsent records kept in memory; the rest re-read from disk"
    )
    batch_size: int = Field(
        2000, ge=1, le=65_535, description="MQTT messages per spool group (one fdatasync)"
    )
    batch_window_ms: float = Field(
        2.0, ge=0, le=1000, description="longest wait for a spool group to fill"
    )
    kafka_linger_ms: float = Field(2.0, ge=0, le=1000, description="producer linger.ms")
    kafka_compression: str = Field("lz4", description="compression.type: lz4, zstd, none...")
    kafka_queue_messages: int = Field(
        200_000, ge=1000, description="producer queue (queue.buffering.max.messages)"
    )
    heartbeat_interval_s: float = Field(10.0, gt=0, description="seconds between heartbeats")
    bridge_http_host: str = Field("127.0.0.1", description="address of /metrics and /healthz")
    bridge_http_port: int = Field(
        8460, ge=0, le=65535, description="port of /metrics and /healthz (0: off)"
    )

    @property
    def client_id(self) -> str:
        """MQTT client id: stable per node, so the persistent session survives restarts."""
        if self.mqtt_client_id:
            return self.mqtt_client_id
        return "edgecloud-bridge-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.node_id)

    @property
    def node_spool_dir(self) -> Path:
        """The default spool dir is per node; an explicit EDGECLOUD_SPOOL_DIR is used as is."""
        if "spool_dir" in self.model_fields_set:
            return self.spool_dir
        return self.spool_dir / self.node_id
