"""The event envelope v1 (edge -> cloud), defined once here and exported to ``schemas/``.

Every event travels as ``{"schema", "event_id", "type", "node_id", "device_id", "ts", "data"}``.
A reading's ``event_id`` is derived from (``device_id``, ``seq``) so that a reading processed
twice anywhere is still one row in the cloud; other events get a random UUID.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from edgecloud.core.readings import ID_PATTERN, Reading, Value

SCHEMA_V1: Final = "edgecloud.event/v1"
EVENT_TYPES = ("reading", "heartbeat", "model_status")
EventType = Literal["reading", "heartbeat", "model_status"]

# Fixed namespace for reading event ids: uuid5(NAMESPACE_URL, "edgecloud:reading").
READING_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "edgecloud:reading")

NodeId = Annotated[str, Field(pattern=ID_PATTERN)]


def reading_event_id(device_id: str, seq: int) -> uuid.UUID:
    """The deterministic id of the reading (``device_id``, ``seq``)."""
    return uuid.uuid5(READING_NAMESPACE, f"{device_id}\x1f{seq}")


def utcnow() -> datetime:
    return datetime.now(UTC)


class ModelRef(BaseModel):
    name: str
    version: str


class InferenceResult(BaseModel):
    """What the active model said about one reading."""

    model: str
    version: str
    outputs: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None
    label: str | int | None = None
    confidence: float | None = None
    anomaly: bool = False
    escalate: bool = False
    latency_ms: float | None = None

    def json_text(self) -> str:
        """``model_dump_json()``'s JSON, written by orjson (several times cheaper per reading)
        from the instance's field dict: pydantic keeps every field there, in declaration order,
        for validated and ``model_construct``-ed instances alike (and so does the edge backend's
        ``result_of``). pydantic writes what orjson cannot (an integer output beyond 64 bits)."""
        try:
            return orjson.dumps(self.__dict__).decode()
        except TypeError:  # orjson.JSONEncodeError
            return self.model_dump_json()


class TensorB64(BaseModel):
    """A tensor value in the binary form of ``core.tensors``: raw little-endian bytes, base64."""

    dtype: str
    shape: list[int]
    b64: str


class ReadingData(BaseModel):
    seq: int
    values: dict[str, Value]
    inference: InferenceResult | None = None
    # the reading's tensor values, only when the agent runs with EDGECLOUD_EVENT_TENSORS=true
    tensors: dict[str, TensorB64] | None = None


class HeartbeatData(BaseModel):
    model_config = ConfigDict(extra="allow")

    labels: dict[str, str] = Field(default_factory=dict)
    active_models: list[ModelRef] = Field(default_factory=list)
    spool_depth: int | None = None
    counters: dict[str, int]
    uptime_s: float | None = None
    role: Literal["agent", "bridge"] = "agent"


class ModelStatusData(BaseModel):
    model_config = ConfigDict(extra="allow")

    rollout_id: str | None = None
    model: str
    version: str
    phase: Literal[
        "downloading", "verified", "loaded", "shadow", "active", "failed", "rolled_back", "refused"
    ]
    detail: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class _Envelope(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["edgecloud.event/v1"] = Field(default=SCHEMA_V1, alias="schema")
    event_id: uuid.UUID
    node_id: NodeId
    device_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    ts: datetime

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class ReadingEvent(_Envelope):
    type: Literal["reading"] = "reading"
    device_id: Annotated[str, Field(pattern=ID_PATTERN)]
    data: ReadingData


class HeartbeatEvent(_Envelope):
    type: Literal["heartbeat"] = "heartbeat"
    data: HeartbeatData


class ModelStatusEvent(_Envelope):
    type: Literal["model_status"] = "model_status"
    data: ModelStatusData


Event = Annotated[ReadingEvent | HeartbeatEvent | ModelStatusEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


class EnvelopeHeader(BaseModel):
    """The envelope without a typed ``data``: what the bridge checks before forwarding."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["edgecloud.event/v1"] = Field(alias="schema")
    event_id: uuid.UUID
    type: EventType
    node_id: NodeId
    device_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    ts: datetime
    data: dict[str, Any]


def reading_event(
    node_id: str, reading: Reading, inference: InferenceResult | None = None
) -> ReadingEvent:
    return ReadingEvent(
        event_id=reading_event_id(reading.device_id, reading.seq),
        node_id=node_id,
        device_id=reading.device_id,
        ts=reading.ts,
        data=ReadingData(seq=reading.seq, values=dict(reading.values), inference=inference),
    )


def heartbeat_event(node_id: str, data: HeartbeatData) -> HeartbeatEvent:
    return HeartbeatEvent(event_id=uuid.uuid4(), node_id=node_id, ts=utcnow(), data=data)


def model_status_event(node_id: str, data: ModelStatusData) -> ModelStatusEvent:
    return ModelStatusEvent(event_id=uuid.uuid4(), node_id=node_id, ts=utcnow(), data=data)
