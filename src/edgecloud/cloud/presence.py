"""Node online / offline transitions, for the Dapr topic ``<prefix>nodes``.

A node is online while its last heartbeat (agent or bridge) is at most ``ONLINE_WITHIN`` old:
the same rule as ``GET /api/v1/nodes`` ("online" / "stale"). Nothing happens when a node
stops: the transition is found by a scan. ``scan`` compares each node with the status last
published for it (table ``node_presence``), writes the new status and returns the nodes that
changed; the rollout runtime runs it under the engine's advisory lock, so one API replica
reports each change once. A node seen for the first time reports its status then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from edgecloud.cloud.db import TS, Node, utcnow

ONLINE_WITHIN = timedelta(seconds=90)


class NodePresence(SQLModel, table=True):
    """The status last published for a node (``online`` / ``offline``)."""

    __tablename__ = "node_presence"

    node_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    changed_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(TS, nullable=False))


@dataclass(frozen=True)
class NodeTransition:
    node_id: str
    status: str  # online | offline
    last_heartbeat: datetime


def status_of(last_heartbeat: datetime, now: datetime) -> str:
    last = last_heartbeat if last_heartbeat.tzinfo else last_heartbeat.replace(tzinfo=UTC)
    return "online" if now - last <= ONLINE_WITHIN else "offline"


def scan(session: Session, now: datetime | None = None) -> list[NodeTransition]:
    """Write and return every node whose status differs from the one last published."""
    now = now or utcnow()
    rows = session.exec(
        select(Node.node_id, Node.last_heartbeat, NodePresence.status).outerjoin(
            NodePresence, col(NodePresence.node_id) == col(Node.node_id)
        )
    ).all()
    changes: list[NodeTransition] = []
    for node_id, last, published in sorted(rows):
        status = status_of(last, now)
        if status == published:
            continue
        session.merge(NodePresence(node_id=node_id, status=status, changed_at=now))
        changes.append(NodeTransition(node_id, status, last))
    session.commit()
    return changes
