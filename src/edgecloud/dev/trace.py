"""``edgecloud trace DEVICE SEQ``: one reading's timeline across the hops of the local stack.

From the stored timestamps (the node's edge database: device ``ts``, ``received_at``, the
outbox batch's commit and publish times; the cloud database: ``received_at``) and from the
stack's logs (``<state>/logs/*.log``: the lines bound to the reading's trace id, see
``core/trace.py``), sorted by time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from edgecloud.core.trace import trace_id
from edgecloud.dev import apps
from edgecloud.dev.control import StackConfig

EDGE_QUERY = sa.text(
    "SELECT r.ts, r.received_at, o.committed_at, o.published_at FROM readings r "
    "LEFT JOIN outbox o ON o.batch_id = r.batch_id WHERE r.device_id = :d AND r.seq = :s"
)
CLOUD_QUERY = sa.text(
    "SELECT ts, received_at, node_id FROM readings WHERE device_id = :d AND seq = :s"
)


@dataclass(frozen=True)
class Step:
    at: datetime
    hop: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "hop": self.hop, "source": self.source}


@dataclass
class Timeline:
    device_id: str
    seq: int
    trace_id: str
    steps: list[Step]
    node_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "seq": self.seq,
            "trace_id": self.trace_id,
            "node_id": self.node_id,
            "steps": [s.as_dict() for s in self.steps],
        }


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _rows(url: str, query: sa.TextClause, device_id: str, seq: int) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query, {"d": device_id, "s": seq})]
    except sa.exc.SQLAlchemyError:  # a node database not created or not migrated yet
        return []
    finally:
        engine.dispose()


def _stored_steps(config: StackConfig, device_id: str, seq: int) -> tuple[list[Step], str | None]:
    infra = config.infra()
    steps: list[Step] = []
    found_on: str | None = None
    for node in apps.node_ids(config.nodes):
        url = infra.database_url(apps.node_database(node))
        for ts, received, committed, published in _rows(url, EDGE_QUERY, device_id, seq):
            found_on = node
            source = f"edge db {node}"
            for at, hop in ((ts, "device ts"), (received, "edge received"),
                            (committed, "edge committed (outbox batch)"),
                            (published, "edge published (outbox batch)")):  # fmt: skip
                if (when := _aware(at)) is not None:
                    steps.append(Step(when, hop, source))
    cloud = infra.database_url(apps.CLOUD_DATABASE)
    for ts, received, node in _rows(cloud, CLOUD_QUERY, device_id, seq):
        if found_on is None and (when := _aware(ts)) is not None:
            steps.append(Step(when, "device ts", "cloud db"))  # the edge row is gone
        found_on = found_on or str(node)
        if (when := _aware(received)) is not None:
            steps.append(Step(when, "cloud stored", "cloud db"))
    return steps, found_on


def _log_steps(log_dir: Path, trace: str) -> list[Step]:
    steps: list[Step] = []
    for path in sorted(log_dir.glob("*.log")):
        with open(path, errors="replace") as handle:
            for line in handle:
                if trace not in line or not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                    at = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
                except (ValueError, KeyError):
                    continue
                steps.append(Step(at, str(entry.get("msg", "")), f"log {path.stem}"))
    return steps


def timeline(config: StackConfig, device_id: str, seq: int) -> Timeline:
    trace = trace_id(device_id, seq)
    stored, node = _stored_steps(config, device_id, seq)
    steps = sorted(stored + _log_steps(config.state_dir / "logs", trace), key=lambda s: s.at)
    return Timeline(device_id, seq, trace, steps, node)
