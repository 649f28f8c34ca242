"""``labels`` and ``evaluations`` (migration 0010_labels)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from edgecloud.cloud.db import TS, JSONType, utcnow

SOURCES = ("escalation", "operator", "simulator")
VERDICTS = ("true_positive", "false_positive", "missed")


class Label(SQLModel, table=True):
    """One source's label of one reading. ``event_id`` is the reading's (deterministic from
    ``device_id`` and ``seq``): a ground-truth label may arrive before its reading."""

    __tablename__ = "labels"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "source", name="uq_labels_event_source"),
        sa.Index("ix_labels_source_ts", "source", "ts"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
            autoincrement=True,
        ),
    )  # fmt: skip
    event_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    device_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    ts: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    source: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    verdict: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    anomalous: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    fault_kind: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


class Evaluation(SQLModel, table=True):
    """A retrained candidate against the active version on a held-out window."""

    __tablename__ = "evaluations"

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid, primary_key=True)
    )
    model: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    parent_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    accepted: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    report: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    svg: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
