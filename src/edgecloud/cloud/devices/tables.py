"""Registry tables, created by the Alembic revision ``0009_device_registry``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from edgecloud.cloud.db import TS, JSONType, utcnow


class RegisteredDevice(SQLModel, table=True):
    """One device identity. ``changed_at`` moves on every add / revoke: the node's desired
    state carries the newest one, so a node learns of a change by its ETag."""

    __tablename__ = "device_registry"

    device_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    node_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    labels: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    auth: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))  # password | cert
    password_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(256)))
    cert_sha256: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    cert_serial: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    cert_not_after: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    created_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    changed_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    revoked_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))


class DeviceAudit(SQLModel, table=True):
    """Who did what to which device, when (append only)."""

    __tablename__ = "device_audit"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    device_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    action: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))  # add | revoke
    actor: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    node_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
