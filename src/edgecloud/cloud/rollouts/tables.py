"""Rollout tables: rollouts, their nodes, and each node's desired model.

``node_desired`` is what ``GET /api/v1/nodes/{id}/desired`` serves; the engine is its only
writer. ``generation`` grows on every change, so the ETag changes with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from edgecloud.cloud.db import TS, JSONType, utcnow


class Rollout(SQLModel, table=True):
    """``state``: running -> succeeded | failed | aborted; running <-> paused."""

    __tablename__ = "rollouts"
    __table_args__ = (sa.Index("ix_rollouts_state", "state"),)

    id: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    model: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    selector: dict[str, str] = Field(sa_column=sa.Column(JSONType, nullable=False))
    waves: list[int] = Field(sa_column=sa.Column(JSONType, nullable=False))
    gates: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    state: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    current_wave: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    wave_started_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))


class RolloutNode(SQLModel, table=True):
    """One selected node. ``status``: pending (wave not reached), then the node's reported
    phase (downloading .. active | failed | refused), or rolled_back by the engine."""

    __tablename__ = "rollout_nodes"

    rollout_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("rollouts.id"), primary_key=True)
    )
    node_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    wave: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    status: str = Field(default="pending", sa_column=sa.Column(sa.String(16), nullable=False))
    previous_model: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    previous_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    metrics: dict[str, float] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    assigned_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


class NodeDesired(SQLModel, table=True):
    """The model a node should run (one model slot per node), and when it last asked."""

    __tablename__ = "node_desired"

    node_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    model: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    version: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    rollout_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    shadow: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    generation: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    last_poll_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
