"""The one model-status writer (cloud/rollouts/status.py): what the worker stores from Kafka and
what ``POST /nodes/{id}/model-status`` stores are the same rows; idempotent on event_id; the
latest per (node, model) is the report with the latest ts, whatever the arrival order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from edgecloud.adapters.kafka_consumer import RawMessage
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.rollouts.status import store_model_status
from edgecloud.cloud.worker.decode import decode
from edgecloud.cloud.worker.store import Store
from edgecloud.core.events import ModelStatusData, ModelStatusEvent

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def report(second: int, phase: str, version: str = "2") -> ModelStatusEvent:
    return ModelStatusEvent(
        event_id=uuid.uuid4(),
        node_id="edge-a",
        ts=T0 + timedelta(seconds=second),
        data=ModelStatusData(model="m", version=version, phase=phase, rollout_id="r1"),  # type: ignore[arg-type]
    )


def rows(engine: sa.Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as conn:
        all_ = conn.execute(
            sa.text("SELECT event_id, node_id, model, version, phase, rollout_id FROM model_status")
        ).all()
        latest = conn.execute(
            sa.text("SELECT node_id, model, version, phase, event_id FROM model_status_latest")
        ).all()
    return sorted(map(tuple, all_)), list(map(tuple, latest))


def test_worker_and_route_paths_store_the_same_rows(tmp_path: Path) -> None:
    events = [report(30, "active", "3"), report(5, "downloading"), report(20, "loaded")]
    via_worker, via_route = tmp_path / "w.db", tmp_path / "r.db"
    for path in (via_worker, via_route):
        migrate(f"sqlite:///{path}")
    worker = make_engine(f"sqlite:///{via_worker}")
    msgs = [
        RawMessage("edgecloud.model-status", 0, i, None, ev.to_json().encode())
        for i, ev in enumerate(events)
    ]
    assert Store(worker).write(decode(msgs, "dl")).model_status_new == 3
    route = make_engine(f"sqlite:///{via_route}")
    for ev in events:  # the route stores one report a request, in its own transaction
        with route.begin() as conn:
            assert store_model_status(conn, [ev]) == 1
    with route.begin() as conn:
        assert store_model_status(conn, events) == 0  # idempotent on event_id
    assert rows(worker) == rows(route)
    _, latest = rows(route)
    assert [(v, p) for _, _, v, p, _ in latest] == [("3", "active")]
    worker.dispose()
    route.dispose()
