"""Settings of the edge agent (``edgecloud edge run``), built once in the CLI and passed down.

Every field reads ``EDGECLOUD_<NAME>`` (``batch_size`` from ``EDGECLOUD_BATCH_SIZE``); flags
override the environment; the defaults point at node ``edge-1`` of ``edgecloud dev up``.

This is the role's ONE settings tree: the inference, model agent and device agent fields are
inherited from their config classes (``InferenceFields``, ``CloudLinkFields``,
``ModelAgentFields``, ``DeviceAgentFields``), and their config objects are built from this
object's values (``inference_settings()``, ``model_agent_settings()``,
``device_agent_settings()``), so that ``--node-id`` reaches the model agent too. Only this
class reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from edgecloud.core.readings import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_TS_MAX_FUTURE_S,
    DEFAULT_TS_MAX_PAST_S,
    ID_PATTERN,
)
from edgecloud.core.settings import (
    BaseRoleSettings,
    DatabaseSettings,
    MqttSettings,
    parse_labels,
)
from edgecloud.edge.device_settings import DeviceAgentFields, DeviceAgentSettings
from edgecloud.edge.inference.settings import InferenceFields, InferenceSettings
from edgecloud.edge.models.settings import CloudLinkFields, ModelAgentFields, ModelAgentSettings


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class EdgeSettings(
    BaseRoleSettings,
    MqttSettings,
    DatabaseSettings,
    InferenceFields,
    CloudLinkFields,
    ModelAgentFields,
    DeviceAgentFields,
):
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
    ts_max_past_s: float = Field(
        DEFAULT_TS_MAX_PAST_S,
        gt=0,
        le=100 * 365 * 86400,
        description="oldest accepted reading ts, in seconds before its receive time "
        "(bad_timestamp dead letter beyond)",
    )
    ts_max_future_s: float = Field(
        DEFAULT_TS_MAX_FUTURE_S,
        gt=0,
        le=365 * 86400,
        description="newest accepted reading ts, in seconds after its receive time "
        "(bad_timestamp dead letter beyond)",
    )
    events_per_message: int = Field(
        200, ge=1, le=10_000, description="reading events per MQTT message (a JSON array)"
    )
    tensor_store: Literal["digest", "none", "blob"] = Field(
        "digest",
        description="what the edge store keeps of a reading's tensor values: digest (dtype, "
        "shape, sha256 of the raw bytes, in readings.tensors), blob (also the bytes, in "
        "tensor_blobs, deleted with their reading by retention), none",
    )
    event_tensors: bool = Field(
        False,
        description="put each tensor value (binary form) into the reading event sent to the "
        "cloud; off: the event carries the result, not the tensor",
    )
    heartbeat_interval_s: float = Field(10.0, gt=0, description="seconds between heartbeats")
    retention_hours: float = Field(
        168.0, ge=0, description="published readings older than this are deleted (0: keep all)"
    )
    retention_interval_s: float = Field(60.0, gt=0, description="seconds between retention runs")
    retention_chunk: int = Field(5000, ge=1, description="rows deleted per retention statement")
    http_host: str = Field("127.0.0.1", description="address of the local HTTP API")
    http_port: int = Field(8410, ge=0, le=65535, description="port of the local HTTP API (0: off)")
    http_token: SecretStr | None = Field(
        None,
        description="bearer token of POST /infer and GET /metrics (required off loopback)",
    )
    dapr_http_port: int = Field(0, ge=0, le=65535, description="HTTP port of the Dapr sidecar")
    dapr_grpc_port: int = Field(
        0, ge=0, le=65535, description="gRPC port of the Dapr sidecar (0: no Dapr)"
    )
    dapr_pubsub: str = Field("edge-pubsub", description="Dapr pub/sub component for decisions")
    dapr_secret_store: str = Field(
        "", description="Dapr secret store read at start (database-url, mqtt-password); empty: off"
    )
    dapr_config_store: str = Field(
        "",
        description="Dapr configuration store followed live (thresholds, batch settings: "
        "edge/live_config.py); empty: off",
    )
    migrate: bool = Field(True, description="upgrade the local schema to head at start")

    @field_validator("node_labels")
    @classmethod
    def _labels(cls, v: str) -> str:
        parse_labels(v)  # refuse a malformed label list at start
        return v

    @model_validator(mode="after")
    def _token_off_loopback(self) -> EdgeSettings:
        if self.http_port and not is_loopback(self.http_host) and not self.http_token:
            raise ValueError(
                f"http_host {self.http_host!r} is not a loopback address: set EDGECLOUD_HTTP_TOKEN "
                "(POST /infer and GET /metrics then need 'Authorization: Bearer <token>')"
            )
        if self.http_token is not None and len(self.http_token.get_secret_value()) < 16:
            raise ValueError("http_token must be at least 16 characters")
        return self

    def inference_settings(self) -> InferenceSettings:
        """The inference config, from this tree's values."""
        return InferenceSettings.model_validate(self._values(InferenceSettings))

    def model_agent_settings(self) -> ModelAgentSettings:
        """The model agent's config: this node's id, keys and cloud link."""
        return ModelAgentSettings.model_validate(self._values(ModelAgentSettings))

    def device_agent_settings(self) -> DeviceAgentSettings:
        """The device agent's config: this node's id, broker and cloud link."""
        return DeviceAgentSettings.model_validate(self._values(DeviceAgentSettings))

    def _values(self, cls: type[BaseModel]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in cls.model_fields}

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
    def ts_window(self) -> tuple[float, float]:
        """(seconds before, seconds after) the receive time in which a reading's ts must lie."""
        return self.ts_max_past_s, self.ts_max_future_s

    @property
    def labels(self) -> dict[str, str]:
        return parse_labels(self.node_labels)

    @property
    def client_id(self) -> str:
        """MQTT client id: stable per node, so the persistent session survives restarts."""
        if self.mqtt_client_id:
            return self.mqtt_client_id
        return "edgecloud-agent-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.node_id)
