"""How heartbeats fold into the ``nodes`` row (pure, order-independent).

Agent and bridge heartbeats of one node merge into one row: each role keeps its own newest
heartbeat (by event ``ts``); an older heartbeat arriving late never overwrites a newer one.
The agent owns labels, active models and counters; the bridge owns the spool depth; a node
seen only through its bridge so far takes the bridge's labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgecloud.core.events import HeartbeatEvent


def _newer(ts: datetime, than: datetime | None) -> bool:
    return than is None or ts > than


def merge_node(current: dict[str, Any] | None, hb: HeartbeatEvent) -> dict[str, Any] | None:
    """The new ``nodes`` row for ``hb`` on top of ``current`` (None: nothing to change)."""
    role = hb.data.role
    data = hb.data.model_dump(mode="json")
    data["ts"] = hb.ts.isoformat()
    row: dict[str, Any] = (
        dict(current)
        if current is not None
        else {
            "node_id": hb.node_id,
            "labels": {},
            "first_seen": hb.ts,
            "last_heartbeat": hb.ts,
            "active_models": [],
            "counters": {},
            "spool_depth": None,
            "agent": None,
            "bridge": None,
            "agent_heartbeat": None,
            "bridge_heartbeat": None,
        }
    )
    own_ts = row["agent_heartbeat"] if role == "agent" else row["bridge_heartbeat"]
    if current is not None and not _newer(hb.ts, own_ts):
        if hb.ts < row["first_seen"]:  # a late old heartbeat still moves first_seen back
            row["first_seen"] = hb.ts
            return row
        return None
    row["first_seen"] = min(row["first_seen"], hb.ts)
    row["last_heartbeat"] = max(row["last_heartbeat"], hb.ts)
    if role == "agent":
        row["agent"], row["agent_heartbeat"] = data, hb.ts
        row["labels"] = dict(hb.data.labels)
        row["active_models"] = [m.model_dump(mode="json") for m in hb.data.active_models]
        row["counters"] = dict(hb.data.counters)
        if row["bridge_heartbeat"] is None:
            row["spool_depth"] = hb.data.spool_depth
    else:
        row["bridge"], row["bridge_heartbeat"] = data, hb.ts
        row["spool_depth"] = hb.data.spool_depth
        if row["agent_heartbeat"] is None:
            row["labels"] = dict(hb.data.labels)
            row["counters"] = dict(hb.data.counters)
    return row
