"""The end of a model version's life: deprecate (no new rollout may pick it; nodes that run it
keep it and may still download it) or delete (the row and, when no other version shares it,
the stored artifact). Each is written to ``model_audit`` with who did it and why, in the same
transaction; the audit outlives a deleted version.

A version still in use is not deleted (``in_use``): a node's desired state names it, or a
running or paused rollout installs it or would roll back to it. Deprecate it, roll the nodes
to another version, then delete it.

Blocking (database and file I/O): routes call these through ``in_thread``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, or_, select

from edgecloud.cloud.db import utcnow
from edgecloud.cloud.registry.store import ArtifactStore
from edgecloud.cloud.registry.tables import ModelAudit, ModelVersion
from edgecloud.cloud.rollouts.tables import NodeDesired, Rollout, RolloutNode
from edgecloud.core.errors import ValidationFailed

ACTIVE_ROLLOUTS = ("running", "paused")


class InUse(ValidationFailed):
    """The version is still installed or targeted somewhere."""


def users(session: Session, name: str, version: str) -> list[str]:
    """What still uses ``name:version``: ``node:<id>`` and ``rollout:<id>`` entries."""
    nodes = session.exec(
        select(NodeDesired.node_id).where(
            col(NodeDesired.model) == name, col(NodeDesired.version) == version
        )
    ).all()
    rollouts = session.exec(
        select(Rollout.id)
        .outerjoin(RolloutNode, col(RolloutNode.rollout_id) == col(Rollout.id))
        .where(
            col(Rollout.state).in_(ACTIVE_ROLLOUTS),
            or_(
                (col(Rollout.model) == name) & (col(Rollout.version) == version),
                (col(RolloutNode.previous_model) == name)
                & (col(RolloutNode.previous_version) == version),
            ),
        )
        .distinct()
    ).all()
    return [f"node:{n}" for n in sorted(nodes)] + [f"rollout:{r}" for r in sorted(rollouts)]


@dataclass(frozen=True)
class Actor:
    name: str
    token_id: str | None = None


def _audit(
    session: Session, row: ModelVersion, action: str, actor: Actor, reason: str | None
) -> None:
    session.add(
        ModelAudit(
            name=row.name,
            version=row.version,
            action=action,
            actor=actor.name,
            token_id=actor.token_id,
            reason=reason,
            artifact_sha256=row.artifact_sha256,
        )
    )


def deprecate(
    session: Session, name: str, version: str, actor: Actor, reason: str | None
) -> ModelVersion | None:
    """Mark the version deprecated (idempotent: a second call changes nothing); None if it is
    not registered."""
    row = session.get(ModelVersion, (name, version))
    if row is None:
        return None
    if row.deprecated_at is None:
        row.deprecated_at, row.deprecated_by = utcnow(), actor.name
        row.deprecation_reason = reason
        session.add(row)
        _audit(session, row, "deprecate", actor, reason)
        session.commit()
        session.refresh(row)
    return row


def delete(
    session: Session,
    store: ArtifactStore,
    name: str,
    version: str,
    actor: Actor,
    reason: str | None,
) -> bool:
    """Delete the version (False if it is not registered); ``InUse`` while it is used."""
    row = session.get(ModelVersion, (name, version))
    if row is None:
        return False
    using = users(session, name, version)
    if using:
        raise InUse(
            "in_use",
            f"{name}:{version} is still used by {', '.join(using[:5])}"
            f"{' and more' if len(using) > 5 else ''}; roll those nodes to another version first",
        )
    sha = row.artifact_sha256
    _audit(session, row, "delete", actor, reason)
    session.delete(row)
    session.commit()
    shared = session.exec(
        select(ModelVersion.name).where(col(ModelVersion.artifact_sha256) == sha)
    ).first()
    if shared is None:
        store.path(sha).unlink(missing_ok=True)
    return True


def audit(session: Session, name: str | None = None, limit: int = 100) -> Sequence[ModelAudit]:
    query = select(ModelAudit).order_by(col(ModelAudit.id).desc()).limit(limit)
    if name is not None:
        query = query.where(col(ModelAudit.name) == name)
    return session.exec(query).all()
