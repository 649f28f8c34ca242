"""merge_node(): agent and bridge heartbeats of one node merge, in any arrival order."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from edgecloud.cloud.worker.nodes import merge_node
from edgecloud.core.events import HeartbeatData, HeartbeatEvent, ModelRef

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def hb(role: str, second: int, **data: Any) -> HeartbeatEvent:
    return HeartbeatEvent(
        event_id=uuid.uuid4(),
        node_id="edge-a",
        ts=T0 + timedelta(seconds=second),
        data=HeartbeatData(role=role, counters={"received": second}, **data),  # type: ignore[arg-type]
    )


def fold(events: list[HeartbeatEvent]) -> dict[str, Any]:
    row: dict[str, Any] | None = None
    for ev in events:
        new = merge_node(row, ev)
        if new is not None:
            row = new
    assert row is not None
    return row


def test_any_order_gives_the_same_row() -> None:
    events = [
        hb("agent", 1, labels={"site": "a"}, active_models=[ModelRef(name="m", version="1")]),
        hb("agent", 5, labels={"site": "b"}, active_models=[ModelRef(name="m", version="2")]),
        hb("bridge", 3, spool_depth=7),
        hb("bridge", 9, spool_depth=2),
    ]
    rows = [fold(list(p)) for p in itertools.permutations(events)]
    assert all(r == rows[0] for r in rows)
    row = rows[0]
    assert row["labels"] == {"site": "b"}
    assert row["active_models"] == [{"name": "m", "version": "2"}]
    assert row["counters"] == {"received": 5}
    assert row["spool_depth"] == 2
    assert row["first_seen"] == T0 + timedelta(seconds=1)
    assert row["last_heartbeat"] == T0 + timedelta(seconds=9)
    assert row["agent_heartbeat"] == T0 + timedelta(seconds=5)
    assert row["bridge_heartbeat"] == T0 + timedelta(seconds=9)


def test_older_heartbeat_of_the_same_role_changes_nothing() -> None:
    row = fold([hb("agent", 3), hb("agent", 5, labels={"site": "b"})])
    assert merge_node(row, hb("agent", 4, labels={"site": "old"})) is None
    earlier = merge_node(row, hb("agent", 2, labels={"site": "old"}))
    assert earlier is not None and earlier["labels"] == {"site": "b"}
    assert earlier["first_seen"] == T0 + timedelta(seconds=2)


def test_bridge_only_node_takes_bridge_labels() -> None:
    row = fold([hb("bridge", 1, labels={"site": "x"}, spool_depth=3)])
    assert row["labels"] == {"site": "x"} and row["spool_depth"] == 3
    assert row["agent"] is None and row["bridge"]["spool_depth"] == 3
