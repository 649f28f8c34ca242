"""The rollout state machine on SQLite (the same code runs on Postgres in the integration
tests): waves, gates, rollback, pause / resume / abort, a restart in the middle."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from edgecloud.cloud.db import ModelStatus, Node, make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.registry.tables import ModelVersion
from edgecloud.cloud.rollouts import engine as ro_engine
from edgecloud.cloud.rollouts.desired import desired_state
from edgecloud.cloud.rollouts.plan import Gates, NodeView, verdict, wave_of
from edgecloud.cloud.rollouts.tables import NodeDesired, RolloutNode

NODES = [f"n{i}" for i in range(1, 11)]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    eng = make_engine(url)
    now = datetime.now(UTC)
    with Session(eng) as s:
        for i, n in enumerate(NODES):
            site = "a" if i < 8 else "b"
            s.add(
                Node(
                    node_id=n,
                    labels={"site": site},
                    last_heartbeat=now,
                    active_models=[{"name": "m", "version": "1.0.0"}],
                )
            )
        for v in ("1.0.0", "2.0.0"):
            s.add(
                ModelVersion(
                    name="m",
                    version=v,
                    runtime="onnx",
                    artifact_sha256="a" * 64,
                    artifact_size=1,
                    key_id="k",
                    manifest={},
                    signature={},
                )
            )
        s.commit()
    yield eng
    eng.dispose()


def report(eng: Engine, rid: str, node: str, phase: str, **metrics: float) -> None:
    with Session(eng) as s:
        s.add(
            ModelStatus(
                event_id=uuid.uuid4(),
                node_id=node,
                rollout_id=rid,
                model="m",
                version="2.0.0",
                phase=phase,
                detail=f"{phase} detail",
                ts=datetime.now(UTC),
                data={"metrics": metrics},
            )
        )
        s.commit()


def poll(eng: Engine, node: str) -> dict[str, object]:
    with Session(eng) as s:
        return desired_state(s, node).body()


def tick(eng: Engine, rid: str) -> None:
    with Session(eng) as s:
        ro_engine.advance(s, rid)


def state(eng: Engine, rid: str) -> tuple[str, int, dict[str, str]]:
    with Session(eng) as s:
        ro = ro_engine._lock(s, rid)
        nodes = {n.node_id: n.status for n in ro_engine.nodes_of(s, rid)}
        return ro.state, ro.current_wave, nodes


def start(eng: Engine, selector: dict[str, str] | None = None, **gates: float) -> str:
    with Session(eng) as s:
        ro = ro_engine.start(
            s,
            "m",
            "2.0.0",
            selector or {"site": "a"},
            [25, 50, 100],
            Gates.model_validate(gates),
            "test",
        )
        return ro.id


def desired_version(eng: Engine, node: str) -> str | None:
    with Session(eng) as s:
        row = s.get(NodeDesired, node)
        return row.version if row else None


def test_wave_sizes() -> None:
    assert [wave_of(NODES[:8], [25, 50, 100])[n] for n in NODES[:8]] == [0, 0, 1, 1, 2, 2, 2, 2]
    assert wave_of(NODES[:5], [10, 50, 100]) == {"n1": 0, "n2": 1, "n3": 1, "n4": 2, "n5": 2}
    assert wave_of(NODES[:4], [50]) == {"n1": 0, "n2": 0}


def test_verdicts() -> None:
    g = Gates(min_agreement=0.9, max_score_drift=0.1, max_latency_ms=50)
    assert verdict(NodeView("active", None, {"agreement": 0.95}, True), g) == ("pass", None)
    assert verdict(NodeView("shadow", None, {"agreement": 0.5}, True), g) == (
        "fail",
        "gate agreement: 0.5 (limit 0.9)",
    )
    assert verdict(NodeView("active", None, {"score_drift": -0.2}, True), g)[0] == "fail"
    assert verdict(NodeView("refused", "bad sig", {}, True), g) == ("fail", "refused: bad sig")
    assert verdict(NodeView("downloading", None, {}, True), g) == ("wait", None)
    assert verdict(NodeView("assigned", None, {}, False), g) == ("offline", None)


def test_full_rollout_across_waves(engine: Engine) -> None:
    rid = start(engine)
    for n in NODES:
        poll(engine, n)
    assert state(engine, rid) == (
        "running",
        0,
        {**{n: "pending" for n in NODES[2:8]}, "n1": "assigned", "n2": "assigned"},
    )
    assert poll(engine, "n1")["model"]["version"] == "2.0.0"  # type: ignore[index]
    assert poll(engine, "n3")["model"] is None
    for wave in ([0, 1], [2, 3], [4, 5, 6, 7]):
        for i in wave:
            report(engine, rid, NODES[i], "shadow", agreement=0.97, score_drift=0.01)
            report(engine, rid, NODES[i], "active", swap_ms=0.2)
        tick(engine, rid)
    st, _, nodes = state(engine, rid)
    assert st == "succeeded"
    assert set(nodes.values()) == {"active"}
    assert [desired_version(engine, n) for n in NODES] == ["2.0.0"] * 8 + [None, None]


def test_failing_gate_rolls_the_wave_back_and_stops(engine: Engine) -> None:
    rid = start(engine)
    for n in NODES[:2]:
        report(engine, rid, n, "active", agreement=1.0)
    tick(engine, rid)
    assert state(engine, rid)[1] == 1
    report(engine, rid, "n3", "active", agreement=0.99)
    report(engine, rid, "n4", "failed")
    tick(engine, rid)
    st, wave, nodes = state(engine, rid)
    assert (st, wave) == ("failed", 1)
    assert nodes == {
        "n1": "active",
        "n2": "active",
        "n3": "rolled_back",
        "n4": "rolled_back",
        **{n: "pending" for n in NODES[4:8]},
    }
    assert [desired_version(engine, n) for n in NODES[:8]] == ["2.0.0"] * 2 + ["1.0.0"] * 2 + [
        None
    ] * 4
    tick(engine, rid)  # idempotent: nothing moves any more
    assert state(engine, rid)[0] == "failed"


def test_shadow_disagreement_blocks_promotion(engine: Engine) -> None:
    rid = start(engine, min_agreement=0.95)
    report(engine, rid, "n1", "shadow", agreement=0.6, score_drift=0.3)
    tick(engine, rid)
    st, _, _ = state(engine, rid)
    assert st == "failed"
    with Session(engine) as s:
        ro = ro_engine._lock(s, rid)
        assert ro.detail == "wave 1 rolled back: n1: gate agreement: 0.6 (limit 0.95)"


def test_pause_resume_abort_and_restart(engine: Engine) -> None:
    rid = start(engine)
    with Session(engine) as s:
        ro_engine.steer(s, rid, "pause")
    for n in NODES[:2]:
        report(engine, rid, n, "active")
    tick(engine, rid)
    assert state(engine, rid)[:2] == ("paused", 0)
    with Session(engine) as s, pytest.raises(ro_engine.RolloutError) as err:
        ro_engine.steer(s, rid, "pause")
    assert err.value.reason == "bad_state"
    # a "restart": a new engine object on the same database carries on
    url = str(engine.url)
    engine2 = make_engine(url)
    with Session(engine2) as s:
        ro_engine.steer(s, rid, "resume")
    tick(engine2, rid)
    assert state(engine2, rid)[:2] == ("running", 1)
    with Session(engine2) as s:
        ro_engine.steer(s, rid, "abort")
    st, _, nodes = state(engine2, rid)
    assert st == "aborted"
    assert nodes["n1"] == nodes["n3"] == "rolled_back" and nodes["n5"] == "pending"
    assert [desired_version(engine2, n) for n in NODES[:4]] == ["1.0.0"] * 4
    engine2.dispose()


def test_offline_node_does_not_block_and_timeout_fails(engine: Engine) -> None:
    rid = start(engine, offline_after_s=0.5, wave_timeout_s=600)
    poll(engine, "n1")
    report(engine, rid, "n1", "active")
    with Session(engine) as s:  # n2 never polls: offline once its wave is older than 0.5 s
        rn = s.get(RolloutNode, (rid, "n2"))
        assert rn is not None
        ro = ro_engine._lock(s, rid)
        ro.wave_started_at = rn.updated_at = datetime.now(UTC) - timedelta(seconds=5)
        s.add(ro)
        s.add(rn)
        s.commit()
    tick(engine, rid)
    assert state(engine, rid)[1] == 1  # advanced without n2
    rid2 = start(engine, selector={"site": "b"}, wave_timeout_s=0.01, offline_after_s=600)
    poll(engine, "n10")  # node ids sort as strings: n10 is wave 1 of site b
    import time

    time.sleep(0.05)
    tick(engine, rid2)
    st, _, nodes = state(engine, rid2)
    assert (st, nodes) == ("failed", {"n10": "rolled_back", "n9": "pending"})


def test_start_refusals(engine: Engine) -> None:
    with Session(engine) as s:
        for args, reason in (
            (("m", "9.9.9", {}, [100]), "unknown_model"),
            (("m", "2.0.0", {"site": "zzz"}, [100]), "no_nodes"),
            (("m", "2.0.0", {}, [50, 10]), "bad_waves"),
        ):
            with pytest.raises(ro_engine.RolloutError) as err:
                ro_engine.start(s, *args, Gates(), "t")  # type: ignore[arg-type]
            assert err.value.reason == reason
    start(engine)
    with Session(engine) as s, pytest.raises(ro_engine.RolloutError) as err:
        ro_engine.start(s, "m", "2.0.0", {}, [100], Gates(), "t")
    assert err.value.reason == "overlap"
