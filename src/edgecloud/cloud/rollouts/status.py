"""The one writer of ``model_status`` reports: the worker (from Kafka) and the API's node route
(``POST /nodes/{id}/model-status``) store a report the same way.

Idempotent on ``event_id``; ``model_status_latest`` keeps, per (node, model), the report with
the latest ``ts`` (an older report arriving late changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from edgecloud.cloud.db import ModelStatus, ModelStatusLatest, table_of, utcnow
from edgecloud.core.events import ModelStatusEvent

_LATEST_KEEP = ("version", "phase", "rollout_id", "detail", "ts", "event_id")


def store_model_status(conn: Connection, events: Sequence[ModelStatusEvent]) -> int:
    """Insert ``events`` (those not stored yet) and fold them into the latest; returns how
    many were new. Runs in the caller's transaction."""
    if not events:
        return 0
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    t = table_of(ModelStatus)
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "event_id": ev.event_id, "node_id": ev.node_id, "rollout_id": ev.data.rollout_id,
            "model": ev.data.model, "version": ev.data.version, "phase": ev.data.phase,
            "detail": ev.data.detail, "ts": ev.ts, "received_at": now,
            "data": ev.data.model_dump(mode="json"),
        }
        for ev in events
    ]  # fmt: skip
    stmt = dialect.insert(t).values(rows).on_conflict_do_nothing().returning(t.c.event_id)
    new_ids = set(conn.execute(stmt).scalars())
    latest = table_of(ModelStatusLatest)
    for row in sorted((r for r in rows if r["event_id"] in new_ids), key=lambda r: r["ts"]):
        up = dialect.insert(latest).values(
            **{k: row[k] for k in ("node_id", "model", *_LATEST_KEEP)}
        )
        up = up.on_conflict_do_update(
            index_elements=[latest.c.node_id, latest.c.model],
            set_={k: up.excluded[k] for k in _LATEST_KEEP},
            where=latest.c.ts < up.excluded.ts,
        )
        conn.execute(up)
    return len(new_ids)
