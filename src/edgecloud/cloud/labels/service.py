"""Writing labels: operator feedback, simulator ground truth, escalation verdicts.

Each source has its own row per reading (``uq_labels_event_source``), so one source never
overwrites another's answer; a source that answers again for a reading replaces its own row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from edgecloud.cloud import db
from edgecloud.cloud.labels.tables import VERDICTS, Label
from edgecloud.core.errors import ValidationFailed
from edgecloud.core.events import reading_event_id
from edgecloud.sim.data import FAULTS

# The heavy model's severity as a label: "low" is its way of saying "nothing to act on".
SEVERITY_ANOMALOUS = {"low": False, "medium": True, "high": True, "critical": True}
OPERATOR_ANOMALOUS = {"true_positive": True, "false_positive": False, "missed": True}


class UnknownReading(ValidationFailed):
    """A label for a reading the cloud does not hold (-> 404)."""


@dataclass(frozen=True)
class Truth:
    device_id: str
    seq: int
    fault: str  # one of sim.data.FAULTS; "none" for a normal reading


def record_feedback(
    session: Session, event_id: uuid.UUID, verdict: str, note: str | None, who: str
) -> Label:
    """The operator's verdict on one stored reading (the latest one wins)."""
    if verdict not in VERDICTS:
        raise ValidationFailed("bad_verdict", f"verdict must be one of {', '.join(VERDICTS)}")
    reading = session.get(db.Reading, event_id)
    if reading is None:
        raise UnknownReading("unknown_event", f"no reading with event_id {event_id}")
    row = session.exec(
        select(Label).where(Label.event_id == event_id, Label.source == "operator")
    ).first()
    if row is None:
        row = Label(event_id=event_id, device_id=reading.device_id, seq=reading.seq,
                    source="operator", verdict=verdict, anomalous=False)  # fmt: skip
    row.ts, row.verdict, row.anomalous = reading.ts, verdict, OPERATOR_ANOMALOUS[verdict]
    row.note, row.created_by, row.created_at = note, who, db.utcnow()
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def record_ground_truth(session: Session, items: Sequence[Truth], who: str) -> int:
    """The simulator's ground truth, one row per reading; returns the rows written."""
    for t in items:
        if t.fault not in FAULTS:
            raise ValidationFailed("bad_fault", f"fault must be one of {', '.join(FAULTS)}")
    latest = {reading_event_id(t.device_id, t.seq): t for t in items}  # a repeat: the last wins
    ids, items = list(latest), list(latest.values())
    label = db.table_of(Label)
    for chunk in range(0, len(ids), 1000):
        session.execute(
            sa.delete(label).where(
                label.c.source == "simulator", label.c.event_id.in_(ids[chunk : chunk + 1000])
            )
        )
    now = db.utcnow()
    rows = [
        {"event_id": eid, "device_id": t.device_id, "seq": t.seq, "ts": None,
         "source": "simulator", "verdict": t.fault, "anomalous": t.fault != "none",
         "fault_kind": None if t.fault == "none" else t.fault, "note": None,
         "created_by": who, "created_at": now}
        for eid, t in zip(ids, items, strict=True)
    ]  # fmt: skip
    if rows:
        session.execute(sa.insert(label), rows)
    session.commit()
    return len(rows)


def record_escalation(conn: Connection, event_id: object, severity: str) -> None:
    """The escalation verdict's label, in the transaction that stores the verdict."""
    anomalous = SEVERITY_ANOMALOUS.get(severity)
    if anomalous is None:
        return
    label, r = db.table_of(Label), db.table_of(db.Reading)
    conn.execute(
        sa.delete(label).where(label.c.event_id == event_id, label.c.source == "escalation")
    )
    src = sa.select(
        r.c.event_id, r.c.device_id, r.c.seq, r.c.ts, sa.literal("escalation"),
        sa.literal(severity), sa.literal(anomalous), sa.literal(db.utcnow(), type_=db.TS),
    ).where(r.c.event_id == event_id)  # fmt: skip
    cols = ["event_id", "device_id", "seq", "ts", "source", "verdict", "anomalous", "created_at"]
    conn.execute(sa.insert(label).from_select(cols, src))


def labels_of(session: Session, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Label]]:
    ids = list(event_ids)
    out: dict[uuid.UUID, list[Label]] = {}
    if not ids:
        return out
    for row in session.exec(select(Label).where(col(Label.event_id).in_(ids))):
        out.setdefault(row.event_id, []).append(row)
    return out
