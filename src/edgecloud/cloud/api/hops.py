"""Per-hop counters of a node: where along the path a reading stopped.

Read from the latest heartbeats (agent and bridge counters, as the node reported them) and from
the cloud database (readings stored per node: the sum of the per-device counters the worker
keeps, so no scan of ``readings``). The hops, in path order:

- ``received``: MQTT messages the agent took from the broker (valid or not);
- ``stored``: readings the agent committed to its local database (new ones);
- ``sent``: reading events the edge broker acknowledged to the agent;
- ``bridge_received``: events the bridge appended to its spool (readings, heartbeats and
  model_status events of the node: the bridge does not count by type);
- ``acked_by_kafka``: spooled records Kafka acknowledged (same units as ``bridge_received``);
- ``stored_in_cloud``: readings of the node's devices stored in the cloud database.

A value is ``None`` where the node has not reported it (no agent or bridge heartbeat yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from edgecloud.cloud.db import Device, Node
from edgecloud.cloud.rollouts.tables import Rollout, RolloutNode

HOPS = ("received", "stored", "sent", "bridge_received", "acked_by_kafka", "stored_in_cloud")


def _count(data: dict[str, Any] | None, key: str) -> int | None:
    counters = (data or {}).get("counters") or {}
    value = counters.get(key)
    return int(value) if isinstance(value, int | float) else None


def node_hops(node: Node, stored_in_cloud: int) -> dict[str, int | None]:
    agent = node.agent or ({"counters": node.counters} if node.counters else None)
    return {
        "received": _count(agent, "received"),
        "stored": _count(agent, "processed"),
        "sent": _count(agent, "events_published"),
        "bridge_received": _count(node.bridge, "events_in"),
        "acked_by_kafka": _count(node.bridge, "processed"),
        "stored_in_cloud": stored_in_cloud,
    }


def cloud_readings_by_node(
    session: Session, node_ids: Iterable[str] | None = None
) -> dict[str, int]:
    """Readings stored in the cloud per node (devices are counted under the node that first
    reported them)."""
    query = select(col(Device.node_id), func.coalesce(func.sum(col(Device.readings)), 0))
    if node_ids is not None:
        query = query.where(col(Device.node_id).in_(list(node_ids)))
    rows = session.exec(query.group_by(col(Device.node_id))).all()
    return {str(node): int(n) for node, n in rows}


def all_node_hops(session: Session) -> dict[str, dict[str, int | None]]:
    stored = cloud_readings_by_node(session)
    nodes = session.exec(select(Node)).all()
    return {n.node_id: node_hops(n, stored.get(n.node_id, 0)) for n in nodes}


def rollout_state_counts(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Rollouts by ``state`` and rollout nodes by ``status`` (small tables)."""
    states = session.exec(
        select(col(Rollout.state), func.count()).group_by(col(Rollout.state))
    ).all()
    statuses = session.exec(
        select(col(RolloutNode.status), func.count()).group_by(col(RolloutNode.status))
    ).all()
    return {str(s): int(n) for s, n in states}, {str(s): int(n) for s, n in statuses}
