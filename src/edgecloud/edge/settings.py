"""Settings of the edge agent (``edgecloud edge run``), built once in the CLI and passed down.

Every field reads ``EDGECLOUD_<NAME>`` (``batch_size`` from ``EDGECLOUD_BATCH_SIZE``); flags
override the environment; the defaults point at node ``edge-1`` of ``edgecloud dev up``.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from edgecloud.core.readings import DEFAULT_MAX_PAYLOAD_BYTES, ID_PATTERN
from edgecloud.core.settings import (
    BaseRoleSettings,
    DatabaseSettings,
    MqttSettings,
    parse_labels,
)


class EdgeSettings(BaseRoleSettings, MqttSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    node_labels: str = Field("", description="labels of this node: site=a,zone=b")
    model: str | None = Field(None, description="model bundle folder loaded at start")
    operator_public_keys: str = Field(
        "", description="trusted operator keys: comma separated paths or base64 raw keys"
    )

    device_shard: str = Field(
        "",
        pattern=r"^(|[1-9][0-9]*/[1-9][0-9]*)$",
        description="i/N: take only devices whose crc32(device_id) % N + 1 == i (nodes sharing "
        "one broker, e.g. the local stack); others are acknowledged and counted as foreign",
    )

    batch_size: int = Field(2000, ge=1, le=100_000, description="readings per micro-batch")
    batch_window_ms: float = Field(
        20.0,
        ge=0,
        le=10_000,
        description="longest wait for a batch to fill",
    )
    max_payload_bytes: int = Field(
        DEFAULT_MAX_PAYLOAD_BYTES, ge=256, description="largest telemetry payload; too_large above"
    )
    events_per_message: int = Field(
        200, ge=1, le=10_000, description="reading events per MQTT message (a JSON array)"
    )
    heartbeat_interval_s: float = Field(10.0, gt=0, description="seconds between heartbeats")
    retention_hours: float = Field(
        168.0, ge=0, description="published readings older than this are deleted (0: keep all)"
    )
    retention_interval_s: float = Field(60.0, gt=0, description="seconds between retention runs")
    retention_chunk: int = Field(5000, ge=1, description="rows deleted per retention statement")
    http_host: str = Field("127.0.0.1", description="address of the local HTTP API")
    http_port: int = Field(8410, ge=0, le=65535, description="port of the local HTTP API (0: off)")
    dapr_http_port: int = Field(0, ge=0, le=65535, description="HTTP port of the Dapr sidecar")
    dapr_grpc_port: int = Field(
        0, ge=0, le=65535, description="gRPC port of the Dapr sidecar (0: no Dapr)"
    )
    dapr_pubsub: str = Field("edge-pubsub", description="Dapr pub/sub component for decisions")
    dapr_secret_store: str = Field(
        "", description="Dapr secret store read at start (database-url, mqtt-password); empty: off"
    )
    migrate: bool = Field(True, description="upgrade the local schema to head at start")

    @field_validator("node_labels")
    @classmethod
    def _labels(cls, v: str) -> str:
        parse_labels(v)  # refuse a malformed label list at start
        return v

    @property
    def shard(self) -> tuple[int, int] | None:
        """(i, N) of ``device_shard``, or None when this node takes every device."""
        if not self.device_shard:
            return None
        i, n = (int(x) for x in self.device_shard.split("/"))
        if i > n:
            raise ValueError(f"device_shard {self.device_shard}: i must be <= N")
        return i, n

    @property
    def labels(self) -> dict[str, str]:
        return parse_labels(self.node_labels)

    @property
    def client_id(self) -> str:
        """MQTT client id: stable per node, so the persistent session survives restarts."""
        if self.mqtt_client_id:
            return self.mqtt_client_id
        return "edgecloud-agent-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.node_id)
