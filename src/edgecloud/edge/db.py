"""The edge node's local schema (SQLModel tables) and the engine helper.

The tables live on their own SQLAlchemy registry (``EDGE_METADATA``), not on the default
``SQLModel.metadata`` that the cloud schema uses: both have a ``readings`` table, and a process
(a test session, ``edgecloud dev``) may import both. The schema is created by the Alembic
migrations in ``edge/migrations`` (``migrate(url)``), never by ``create_all`` in the agent.

- ``readings``: one row per (device_id, seq), with the inference result; ``batch_id`` names the
  outbox row whose events carry it.
- ``outbox``: one row per committed batch; ``published_at`` is set once the broker acknowledged
  every reading event of the batch. Rows still NULL are republished at start.
- ``tensor_blobs``: the bytes of a reading's tensor values, when ``EDGECLOUD_TENSOR_STORE=blob``.
- ``devices``: the last seq per device (out-of-order and replay detection survive restarts).
- ``dead_letters``: every payload that was not stored as a reading, or whose inference failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, create_engine

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

EDGE_REGISTRY = registry()
EDGE_METADATA = EDGE_REGISTRY.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class EdgeModel(SQLModel, registry=EDGE_REGISTRY):
    pass


class ReadingRow(EdgeModel, table=True):
    __tablename__ = "readings"
    __table_args__ = (
        sa.Index("ix_readings_batch", "batch_id"),
        sa.Index("ix_readings_received_at", "received_at"),
    )

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    ts: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    values: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    inference: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    anomaly: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    score: float | None = Field(default=None, sa_column=sa.Column(sa.Double))
    batch_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # per tensor value: {"dtype", "shape", "sha256"} (EDGECLOUD_TENSOR_STORE digest or blob)
    tensors: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))


class TensorBlobRow(EdgeModel, table=True):
    """The raw little-endian bytes of one tensor value of a reading (``tensor_store=blob``);
    deleted with its reading (foreign key, ON DELETE CASCADE; retention on SQLite)."""

    __tablename__ = "tensor_blobs"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["device_id", "seq"],
            ["readings.device_id", "readings.seq"],
            name="fk_tensor_blobs_reading",
            ondelete="CASCADE",
        ),
    )

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    dtype: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    shape: list[int] = Field(sa_column=sa.Column(JSONType, nullable=False))
    sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class OutboxRow(EdgeModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index(
            "ix_outbox_unpublished",
            "batch_id",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
    )

    batch_id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    committed_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    published_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    readings: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))


class DeviceRow(EdgeModel, table=True):
    __tablename__ = "devices"

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    last_seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_seen: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    readings: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class DeadLetterRow(EdgeModel, table=True):
    __tablename__ = "dead_letters"
    __table_args__ = (sa.Index("ix_dead_letters_received_at", "received_at"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    received_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    topic: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    detail: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    device_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))


def make_engine(url: str) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    # no pre-ping: a round trip per checkout; the agent retries a failed batch instead
    return create_engine(url, pool_size=4, max_overflow=4)
