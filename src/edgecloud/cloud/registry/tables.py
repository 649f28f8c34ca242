"""Registry tables: the operator keys the cloud trusts and the registered model versions.

Created by the Alembic revision ``0006_registry_rollouts`` (never by ``create_all``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from edgecloud.cloud.db import TS, JSONType, utcnow


class OperatorKey(SQLModel, table=True):
    """An ed25519 public key whose signatures the registry accepts."""

    __tablename__ = "operator_keys"

    key_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    public_key: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    name: str = Field(default="", sa_column=sa.Column(sa.String(128), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))


class ModelVersion(SQLModel, table=True):
    """One uploaded bundle. ``artifact_sha256`` names the stored tar (and is its ETag)."""

    __tablename__ = "model_versions"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    version: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    runtime: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    file_sha256: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    artifact_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    artifact_size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    key_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    manifest: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    signature: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    io: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONType, nullable=False)
    )  # {"inputs": [...], "outputs": [...]} as the ONNX file declares them
    uploaded_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
    # set by ``POST .../deprecate`` (``registry/lifecycle.py``, revision 0008): no new rollout
    deprecated_at: datetime | None = Field(default=None, sa_column=sa.Column(TS))
    deprecated_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    deprecation_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class ModelAudit(SQLModel, table=True):
    """Who deprecated or deleted which model version, when and why (kept after a delete)."""

    __tablename__ = "model_audit"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))  # the token's name
    token_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(36)))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    artifact_sha256: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))
