"""The rollout state machine, persisted in the cloud database.

    running --all nodes of the last wave pass--> succeeded
    running --a node fails a gate / the wave times out--> failed   (that wave rolled back)
    running <--pause / resume--> paused
    running | paused --abort--> aborted                             (every wave rolled back)

``tick`` is idempotent and reads only the database (rollouts, rollout_nodes, node_desired and
the ``model_status`` rows the worker stores from node events), so any process may run it and
a restarted cloud carries on where it stopped. Each rollout row is locked (``FOR UPDATE``)
while it is advanced, so two API processes and an operator's pause never interleave.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from edgecloud.cloud.db import ModelStatus, Node, utcnow
from edgecloud.cloud.registry.tables import ModelVersion
from edgecloud.cloud.rollouts.plan import Gates, NodeView, parse_waves, verdict, wave_of
from edgecloud.cloud.rollouts.tables import NodeDesired, Rollout, RolloutNode
from edgecloud.core.errors import ValidationFailed

ACTIVE_STATES = ("running", "paused")
PHASE_ORDER = {"downloading": 1, "verified": 2, "loaded": 3, "shadow": 4, "active": 5}


class RolloutError(ValidationFailed):
    """``reason``: unknown_model, deprecated, no_nodes, overlap, bad_waves, bad_state,
    not_found."""


@dataclass(frozen=True)
class Transition:
    """A rollout state change, for the Dapr topic (``cloud/transitions.py``). ``kind``:
    started, wave_passed, completed, rolled_back, paused, resumed; ``wave`` is 1-based."""

    kind: str
    rollout_id: str
    model: str
    version: str
    state: str
    wave: int
    waves: int
    detail: str | None = None


@dataclass
class TickResult:
    changed_nodes: set[str]
    changed_rollouts: set[str]
    transitions: list[Transition] = field(default_factory=list)


def transition(ro: Rollout, kind: str, detail: str | None = None) -> Transition:
    return Transition(
        kind, ro.id, ro.model, ro.version, ro.state, ro.current_wave + 1, len(ro.waves), detail
    )


def aware_utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _lock(session: Session, rollout_id: str) -> Rollout:
    row = session.exec(
        select(Rollout).where(col(Rollout.id) == rollout_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise RolloutError("not_found", f"no rollout {rollout_id!r}")
    return row


def _set_desired(
    session: Session, node_id: str, model: str | None, version: str | None,
    rollout_id: str | None, shadow: dict[str, Any],
) -> None:  # fmt: skip
    row = session.get(NodeDesired, node_id, with_for_update=True)
    if row is None:
        row = NodeDesired(node_id=node_id)
    row.model, row.version, row.rollout_id, row.shadow = model, version, rollout_id, shadow
    row.generation += 1
    row.updated_at = utcnow()
    session.add(row)


def _previous(session: Session, node_id: str) -> tuple[str | None, str | None]:
    desired = session.get(NodeDesired, node_id)
    if desired is not None and desired.model is not None:
        return desired.model, desired.version
    node = session.get(Node, node_id)
    for ref in (node.active_models if node else None) or []:
        return ref.get("name") or ref.get("model"), ref.get("version")
    return None, None


def _assign(session: Session, ro: Rollout, wave: int) -> set[str]:
    now = utcnow()
    nodes = session.exec(
        select(RolloutNode).where(
            col(RolloutNode.rollout_id) == ro.id, col(RolloutNode.wave) == wave
        )
    ).all()
    for rn in nodes:
        rn.previous_model, rn.previous_version = _previous(session, rn.node_id)
        rn.status, rn.assigned_at, rn.updated_at = "assigned", now, now
        _set_desired(session, rn.node_id, ro.model, ro.version, ro.id, ro.gates)
        session.add(rn)
    ro.current_wave, ro.wave_started_at, ro.updated_at = wave, now, now
    return {rn.node_id for rn in nodes}


def start(
    session: Session, model: str, version: str, selector: dict[str, str], waves: list[int],
    gates: Gates, created_by: str,
) -> Rollout:  # fmt: skip
    try:
        parse_waves(waves)
    except ValueError as exc:
        raise RolloutError("bad_waves", str(exc)) from exc
    registered = session.get(ModelVersion, (model, version))
    if registered is None:
        raise RolloutError("unknown_model", f"{model}:{version} is not registered")
    if registered.deprecated_at is not None:
        raise RolloutError(
            "deprecated",
            f"{model}:{version} was deprecated by {registered.deprecated_by}"
            f"{': ' + registered.deprecation_reason if registered.deprecation_reason else ''}",
        )
    nodes = sorted(
        n.node_id
        for n in session.exec(select(Node)).all()
        if all((n.labels or {}).get(k) == v for k, v in selector.items())
    )
    if not nodes:
        raise RolloutError("no_nodes", f"no node has the labels {selector}")
    busy = session.exec(
        select(RolloutNode.node_id, Rollout.id)
        .join(Rollout, col(Rollout.id) == col(RolloutNode.rollout_id))
        .where(col(Rollout.state).in_(ACTIVE_STATES), col(RolloutNode.node_id).in_(nodes))
    ).first()
    if busy is not None:
        raise RolloutError("overlap", f"node {busy[0]} is in rollout {busy[1]}, still running")
    ro = Rollout(
        id="r-" + secrets.token_hex(5), model=model, version=version, selector=selector,
        waves=waves, gates=gates.model_dump(), state="running", created_by=created_by,
    )  # fmt: skip
    session.add(ro)
    session.flush()
    for node_id, wave in wave_of(nodes, waves).items():
        session.add(RolloutNode(rollout_id=ro.id, node_id=node_id, wave=wave))
    session.flush()
    _assign(session, ro, 0)
    session.commit()
    session.refresh(ro)
    return ro


def _fold_reports(session: Session, ro: Rollout, nodes: dict[str, RolloutNode]) -> None:
    """Latest reported phase per node (by event ts); metrics merged over every report."""
    rows = session.exec(
        select(ModelStatus)
        .where(col(ModelStatus.rollout_id) == ro.id, col(ModelStatus.version) == ro.version)
        .order_by(col(ModelStatus.ts))
    ).all()
    for row in rows:
        rn = nodes.get(row.node_id)
        if rn is None or rn.status in ("pending", "rolled_back"):
            continue
        metrics = dict(rn.metrics or {})
        metrics.update({k: float(v) for k, v in (row.data.get("metrics") or {}).items()})
        if metrics != rn.metrics:
            rn.metrics = metrics
        if rn.status != row.phase or rn.detail != row.detail:
            rn.status, rn.detail, rn.updated_at = row.phase, row.detail, utcnow()
        session.add(rn)


def _rollback(session: Session, ro: Rollout, nodes: Sequence[RolloutNode]) -> set[str]:
    changed: set[str] = set()
    for rn in nodes:
        if rn.status in ("pending", "rolled_back"):
            continue
        desired = session.get(NodeDesired, rn.node_id)
        if desired is not None and desired.rollout_id == ro.id:
            _set_desired(session, rn.node_id, rn.previous_model, rn.previous_version, None, {})
            changed.add(rn.node_id)
        rn.status, rn.updated_at = "rolled_back", utcnow()
        session.add(rn)
    return changed


def _finish(ro: Rollout, state: str, detail: str | None) -> None:
    ro.state, ro.detail = state, detail
    ro.updated_at = ro.finished_at = utcnow()


def _last_polls(session: Session, ro: Rollout) -> dict[str, datetime]:
    """``last_poll_at`` of each node of the current wave that has polled, in one query (not
    one per node: a wave of 10,000 nodes is looked at every tick)."""
    wave = select(RolloutNode.node_id).where(
        col(RolloutNode.rollout_id) == ro.id, col(RolloutNode.wave) == ro.current_wave
    )
    rows = session.exec(
        select(NodeDesired.node_id, NodeDesired.last_poll_at).where(
            col(NodeDesired.node_id).in_(wave), col(NodeDesired.last_poll_at).is_not(None)
        )
    ).all()
    return {node: aware_utc(at) for node, at in rows if at is not None}


def _online(
    rn: RolloutNode, last_poll: datetime | None, gates: Gates, since: datetime, now: datetime
) -> bool:
    """Seen lately: a desired-state poll (touched at the start and end of each long-poll), a
    report for this rollout, or the wave's start (a node gets ``offline_after_s`` to show up)."""
    seen = [since, aware_utc(rn.updated_at)]
    if last_poll is not None:
        seen.append(last_poll)
    return now - max(seen) <= timedelta(seconds=gates.offline_after_s)


def advance(session: Session, rollout_id: str) -> TickResult:
    """One step of one rollout (call in a transaction; commits)."""
    result = TickResult(set(), set())
    ro = _lock(session, rollout_id)
    rows = session.exec(select(RolloutNode).where(col(RolloutNode.rollout_id) == ro.id)).all()
    nodes = {rn.node_id: rn for rn in rows}
    _fold_reports(session, ro, nodes)
    gates = Gates.model_validate(ro.gates)
    now = utcnow()
    if ro.state == "succeeded":  # late nodes (offline during the rollout) that fail
        late = [rn for rn in rows if verdict(_view(rn, True), gates)[0] == "fail"]
        undone = _rollback(session, ro, late)
        if undone:
            detail = "late nodes rolled back: " + ", ".join(sorted(undone))
            result.transitions.append(transition(ro, "rolled_back", detail))
        result.changed_nodes |= undone
    if ro.state != "running":
        session.commit()
        return result
    started = aware_utc(ro.wave_started_at) if ro.wave_started_at else now
    wave = [rn for rn in rows if rn.wave == ro.current_wave]
    polls = _last_polls(session, ro)
    verdicts = {
        rn.node_id: verdict(
            _view(rn, _online(rn, polls.get(rn.node_id), gates, started, now)), gates
        )
        for rn in wave
    }
    failures = [f"{n}: {why}" for n, (v, why) in sorted(verdicts.items()) if v == "fail"]
    waiting = sorted(n for n, (v, _) in verdicts.items() if v == "wait")
    passed = [n for n, (v, _) in verdicts.items() if v == "pass"]
    if not failures and waiting and now - started > timedelta(seconds=gates.wave_timeout_s):
        failures = [f"wave {ro.current_wave + 1} timed out waiting for {', '.join(waiting)}"]
    if failures:
        result.changed_nodes |= _rollback(session, ro, wave)
        _finish(ro, "failed", f"wave {ro.current_wave + 1} rolled back: " + "; ".join(failures))
        result.changed_rollouts.add(ro.id)
        result.transitions.append(transition(ro, "rolled_back", ro.detail))
    elif not waiting and passed:
        result.changed_rollouts.add(ro.id)
        result.transitions.append(transition(ro, "wave_passed"))
        if ro.current_wave + 1 >= len(ro.waves):
            _finish(ro, "succeeded", None)
            result.transitions.append(transition(ro, "completed"))
        else:
            result.changed_nodes |= _assign(session, ro, ro.current_wave + 1)
    session.add(ro)
    session.commit()
    return result


def _view(rn: RolloutNode, online: bool) -> NodeView:
    return NodeView(rn.status, rn.detail, rn.metrics or {}, online)


def steer(session: Session, rollout_id: str, action: str) -> tuple[Rollout, set[str]]:
    """pause | resume | abort; returns the rollout and the nodes whose desired state changed."""
    ro = _lock(session, rollout_id)
    changed: set[str] = set()
    allowed = {"pause": ("running",), "resume": ("paused",), "abort": ACTIVE_STATES}[action]
    if ro.state not in allowed:
        raise RolloutError("bad_state", f"cannot {action} a rollout that is {ro.state}")
    if action == "pause":
        ro.state = "paused"
    elif action == "resume":
        ro.state, ro.wave_started_at = "running", utcnow()
    else:
        rows = session.exec(select(RolloutNode).where(col(RolloutNode.rollout_id) == ro.id)).all()
        changed = _rollback(session, ro, rows)
        _finish(ro, "aborted", "aborted by an operator; every wave rolled back")
    ro.updated_at = utcnow()
    session.add(ro)
    session.commit()
    session.refresh(ro)
    return ro, changed


def tickable(session: Session) -> list[str]:
    since = utcnow() - timedelta(days=1)
    rows = session.exec(
        select(Rollout.id).where(
            (col(Rollout.state) == "running")
            | ((col(Rollout.state) == "succeeded") & (col(Rollout.finished_at) > since))
        )
    ).all()
    return list(rows)


def nodes_of(session: Session, rollout_id: str) -> Sequence[RolloutNode]:
    return session.exec(
        select(RolloutNode)
        .where(col(RolloutNode.rollout_id) == rollout_id)
        .order_by(col(RolloutNode.wave), col(RolloutNode.node_id))
    ).all()
