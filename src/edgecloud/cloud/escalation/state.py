"""The escalation state other processes read (``service_state`` row ``escalation``).

``value["state"]`` is one of: ``disabled`` (no OPENAI_API_KEY), ``enabled``, ``circuit_open``
(the endpoint failed repeatedly; requests paused until ``retry_at``), ``budget_exhausted``
(the token budget of the period is spent; resumes at ``resets_at``). ``unknown``: no worker
has reported yet.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from edgecloud.cloud import db

STATE_KEY = "escalation"
STATES = ("disabled", "enabled", "circuit_open", "budget_exhausted", "unknown")


def write_state(engine: Engine, value: dict[str, Any]) -> None:
    t = db.table_of(db.ServiceState)
    mod = postgresql if engine.dialect.name == "postgresql" else sqlite
    now = db.utcnow()
    stmt = mod.insert(t).values(key=STATE_KEY, value=value, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.key], set_={"value": stmt.excluded.value, "updated_at": now}
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def publish_disabled(engine: Engine) -> None:
    write_state(engine, {"state": "disabled", "detail": "OPENAI_API_KEY is not set"})


def escalation_status(bind: Session | Connection | Engine) -> dict[str, Any]:
    """The escalation state as the worker last published it (for the REST API)."""
    t = db.table_of(db.ServiceState)
    sel = sa.select(t.c.value, t.c.updated_at).where(t.c.key == STATE_KEY)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            row = conn.execute(sel).first()
    elif isinstance(bind, Session):
        row = bind.connection().execute(sel).first()
    else:
        row = bind.execute(sel).first()
    if row is None:
        return {"state": "unknown", "detail": "no worker has reported yet"}
    value = dict(row[0])
    value["updated_at"] = row[1].isoformat() if row[1] is not None else None
    return value
