"""Response and request bodies of the REST API (the OpenAPI document is built from these)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from edgecloud.cloud.auth import Scope


def _utc(ts: datetime) -> datetime:
    """SQLite hands naive datetimes back; the API always answers in UTC with a zone."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str


class DeviceOut(BaseModel):
    device_id: str
    node_id: str
    first_seen: UtcTime
    last_seen: UtcTime
    last_seq: int
    readings: int


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class ReadingOut(BaseModel):
    event_id: uuid.UUID
    device_id: str
    seq: int
    node_id: str
    ts: UtcTime
    received_at: UtcTime
    values: dict[str, Any]
    model: str | None = None
    model_version: str | None = None
    score: float | None = None
    anomaly: bool
    escalate: bool
    inference: dict[str, Any] | None = None


class ReadingPage(BaseModel):
    items: list[ReadingOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class AggregatePoint(BaseModel):
    metric: str
    bucket: UtcTime = Field(description="start of the bucket (UTC, aligned on the Unix epoch)")
    count: int
    min: float
    max: float
    mean: float
    anomaly_count: int


class AggregatesOut(BaseModel):
    device_id: str
    bucket: str
    since: UtcTime = Field(description="effective start, rounded down onto the bucket grid")
    until: UtcTime = Field(description="effective end (exclusive), rounded up onto the grid")
    items: list[AggregatePoint]


class EscalationOut(BaseModel):
    status: str
    severity: str | None = None
    explanation: str | None = None
    suggested_action: str | None = None
    model: str | None = None
    tokens: int = 0
    error: str | None = None
    updated_at: UtcTime | None = None


class AnomalyOut(BaseModel):
    event_id: uuid.UUID
    device_id: str
    seq: int
    node_id: str
    ts: UtcTime
    values: dict[str, Any]
    model: str | None = None
    model_version: str | None = None
    score: float | None = None
    escalate: bool
    escalation: EscalationOut | None = None


class AnomalyPage(BaseModel):
    items: list[AnomalyOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class NodeOut(BaseModel):
    node_id: str
    labels: dict[str, str]
    status: Literal["online", "stale"] = Field(description="online: heartbeat in the last 90 s")
    first_seen: UtcTime
    last_heartbeat: UtcTime
    active_models: list[dict[str, Any]]
    counters: dict[str, Any]
    spool_depth: int | None = None
    hops: dict[str, int | None] = Field(
        default_factory=dict,
        description="per-hop counters, in path order: received, stored, sent (agent), "
        "bridge_received, acked_by_kafka (bridge), stored_in_cloud (docs/observability.md)",
    )


class ModelStatusOut(BaseModel):
    model: str
    version: str
    phase: str
    rollout_id: str | None = None
    detail: str | None = None
    ts: UtcTime


class NodeDetail(NodeOut):
    agent: dict[str, Any] | None = None
    bridge: dict[str, Any] | None = None
    agent_heartbeat: UtcTime | None = None
    bridge_heartbeat: UtcTime | None = None
    devices: int
    model_status: list[ModelStatusOut]


class EscalationStatusOut(BaseModel):
    enabled: bool
    status: str = Field(
        description="enabled, disabled, circuit_open, budget_exhausted or unknown (no worker yet)"
    )
    reason: str | None = Field(None, description="why escalation is off, when it is")
    state: dict[str, Any] | None = Field(
        None, description="what the worker last published (budget, breaker), if anything"
    )
    counts: dict[str, int] = Field(description="escalations by status")


class TokenCreate(BaseModel):
    scope: Scope
    name: str = Field("", max_length=128)
    node_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    scope: str
    node_id: str | None = None
    created_at: UtcTime
    revoked_at: UtcTime | None = None
    last_used_at: UtcTime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself; shown this once, stored only as a hash")


class NodePage(BaseModel):
    items: list[NodeOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")
