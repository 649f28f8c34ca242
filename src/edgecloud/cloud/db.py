"""The cloud schema (SQLModel tables) and the engine / session helpers.

Types degrade from Postgres to SQLite: ``Uuid`` is native ``uuid`` on Postgres, ``JSONB`` is
``JSON`` on SQLite, ``DateTime(timezone=True)`` is ``timestamptz``. The schema is created by
the Alembic migrations in ``cloud/migrations`` (``migrate(url)``), never by ``create_all`` in a
running service.

Table ownership: the worker writes readings, devices, aggregates_1m, aggregates_1h, nodes,
heartbeats, model_status, model_status_latest, dead_letters, escalations and service_state; the
REST API reads them and owns api_tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    return Field(
        default_factory=utcnow if default_now else None,
        sa_column=sa.Column(TS, nullable=nullable, index=index),
    )


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(JSONType, nullable=nullable))


class Reading(SQLModel, table=True):
    """One device reading, with the edge inference result. Idempotent on ``event_id``."""

    __tablename__ = "readings"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "seq", name="uq_readings_device_seq"),
        sa.Index("ix_readings_device_ts", "device_id", "ts"),
        sa.Index(
            "ix_readings_anomaly_ts",
            "ts",
            postgresql_where=sa.text("anomaly"),
            sqlite_where=sa.text("anomaly"),
        ),
    )

    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    device_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    node_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    ts: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    values: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    model: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    model_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    score: float | None = Field(default=None, sa_column=sa.Column(sa.Double))
    anomaly: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    escalate: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    inference: dict[str, Any] | None = _json()


class Device(SQLModel, table=True):
    __tablename__ = "devices"

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    node_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    first_seen: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    last_seen: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    last_seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    readings: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class Aggregate1m(SQLModel, table=True):
    """Per device, per numeric scalar metric, per minute. ``mean = sum / count``."""

    __tablename__ = "aggregates_1m"

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    metric: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    bucket: datetime = Field(sa_column=sa.Column(TS, primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # numeric: an exact sum of the JSON decimals, the same whatever the arrival order
    sum: float = Field(sa_column=sa.Column(sa.Numeric(asdecimal=False), nullable=False))
    min: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    max: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    anomaly_count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


class Aggregate1h(SQLModel, table=True):
    """The same per UTC hour: the rollup the API reads for whole-hour buckets (1h, 2h, 1d ...)
    instead of 60 minute rows per hour. Kept by the worker in the same statement as
    ``aggregates_1m``, from the same new readings, so it always equals the minutes folded."""

    __tablename__ = "aggregates_1h"

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    metric: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    bucket: datetime = Field(sa_column=sa.Column(TS, primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sum: float = Field(sa_column=sa.Column(sa.Numeric(asdecimal=False), nullable=False))
    min: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    max: float = Field(sa_column=sa.Column(sa.Double, nullable=False))
    anomaly_count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


class Escalation(SQLModel, table=True):
    """One escalated reading; also the work queue of the escalation task.

    ``status``: pending -> done | failed | budget_exhausted (retried next period) | disabled.
    """

    __tablename__ = "escalations"
    __table_args__ = (sa.Index("ix_escalations_status_next", "status", "next_attempt_at"),)

    event_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("readings.event_id"), primary_key=True)
    )
    status: str = Field(default="pending", sa_column=sa.Column(sa.String(32), nullable=False))
    severity: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    explanation: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    suggested_action: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    model: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    tokens: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    next_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


class Node(SQLModel, table=True):
    """Latest state of an edge node; agent and bridge heartbeats of one node merge here."""

    __tablename__ = "nodes"

    node_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    labels: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    first_seen: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    last_heartbeat: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    active_models: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(JSONType, nullable=False)
    )
    counters: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    spool_depth: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    agent: dict[str, Any] | None = _json()  # latest agent heartbeat data (with its "ts")
    bridge: dict[str, Any] | None = _json()  # latest bridge heartbeat data (with its "ts")
    agent_heartbeat: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    bridge_heartbeat: datetime | None = Field(default=None, sa_column=sa.Column(TS))


class Heartbeat(SQLModel, table=True):
    __tablename__ = "heartbeats"
    __table_args__ = (sa.Index("ix_heartbeats_node_ts", "node_id", "ts"),)

    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    node_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    role: str = Field(default="agent", sa_column=sa.Column(sa.String(16), nullable=False))
    ts: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    data: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))


class ModelStatus(SQLModel, table=True):
    __tablename__ = "model_status"
    __table_args__ = (
        sa.Index("ix_model_status_node_ts", "node_id", "ts"),
        sa.Index("ix_model_status_rollout", "rollout_id"),
    )

    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    node_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    rollout_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    model: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    phase: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    ts: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    data: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))


class ModelStatusLatest(SQLModel, table=True):
    """The newest model_status (by event ``ts``) per node and model name."""

    __tablename__ = "model_status_latest"

    node_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    model: str = Field(sa_column=sa.Column(sa.String(128), primary_key=True))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    phase: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    rollout_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    ts: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))


class DeadLetter(SQLModel, table=True):
    """An event the worker could not accept, kept with its reason (never blocks the batch)."""

    __tablename__ = "dead_letters"
    __table_args__ = (sa.Index("ix_dead_letters_received", "received_at"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    topic: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    partition: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    offset: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    node_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    event_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    reason: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


class ApiToken(SQLModel, table=True):
    """A bearer token of the REST API, stored as a hash (the API engineer's table)."""

    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid, primary_key=True)
    )
    name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    scope: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    node_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    token_hash: str = Field(sa_column=sa.Column(sa.String(128), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    last_used_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))


class ServiceState(SQLModel, table=True):
    """Small key/value state the services publish, e.g. key ``escalation`` (see escalation.py)."""

    __tablename__ = "service_state"

    key: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    value: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; ``postgresql://`` is mapped to the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core ``Table`` of a SQLModel table class (typed, for Core statements)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table
