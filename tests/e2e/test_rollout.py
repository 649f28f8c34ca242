"""Issue 6 end to end: five edge agents (separate processes) on live readings, the real cloud
API process, signed bundles from the registry, staged rollouts with shadow gates.

One fleet serves the whole module (starting five agents is most of the cost); the tests run
in file order, each starting from what the previous one left (every node on a known model).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rollout_fleet import Devices, Fleet, make_fleet

from edgecloud.bench.rollout_models import linear_bundle, stateful_bundle
from edgecloud.core.signing import generate_key, public_key_b64
from edgecloud.dev.stack import Infra

SITES = [f"s{i}" for i in range(1, 6)]
GOOD = {"shadow_readings": 40, "min_agreement": 0.9, "max_score_drift": 0.1}


@pytest.fixture(scope="module")
def fleet(stack: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    fleet = make_fleet(stack, tmp)
    v1 = linear_bundle(tmp / "v1", "1.0.0", fleet.key)
    devices = Devices(stack, [f"{fleet.tag}-d{i}" for i in range(4)]).start()
    try:
        for site in SITES:
            fleet.add_node(f"{fleet.tag}-{site}", {"site": site, "fleet": fleet.tag}, v1)
        yield fleet
    finally:
        devices.stop()
        fleet.stop()


def nodes(fleet: Fleet) -> list[str]:
    return sorted(fleet.agents)


def serving(fleet: Fleet) -> list[str | None]:
    return [fleet.serving(n) for n in nodes(fleet)]


def push(fleet: Fleet, tmp: Path, version: str, **kw: object) -> None:
    fleet.cloud.push(linear_bundle(tmp / version, version, fleet.key, **kw))  # type: ignore[arg-type]


def everyone(fleet: Fleet) -> dict[str, str]:
    return {"fleet": fleet.tag}


def test_full_rollout_across_waves(fleet: Fleet, tmp_path: Path) -> None:
    push(fleet, tmp_path, "1.1.0", weights=(0.05, 2.1, 0.1))
    rid = fleet.cloud.rollout("press-linear:1.1.0", everyone(fleet), [20, 60, 100], **GOOD)
    t0 = time.monotonic()
    final = fleet.cloud.wait_final(rid, 120)
    print(f"rollout to 5 nodes in 3 waves: {time.monotonic() - t0:.1f} s")
    assert final["state"] == "succeeded", final
    assert [n["wave"] for n in final["nodes"]] == [0, 1, 1, 2, 2]
    assert {n["status"] for n in final["nodes"]} == {"active"}
    for n in final["nodes"]:
        m = n["metrics"]
        assert m["readings"] >= 40 and m["agreement"] >= 0.9 and m["error_rate"] == 0.0
        assert m["swap_ms"] < 100.0
    assert serving(fleet) == ["press-linear:1.1.0"] * 5


def test_model_that_fails_to_load_rolls_the_wave_back(fleet: Fleet, tmp_path: Path) -> None:
    push(fleet, tmp_path, "1.2.0", broken=True)
    rid = fleet.cloud.rollout("press-linear:1.2.0", everyone(fleet), [20, 60, 100], **GOOD)
    final = fleet.cloud.wait_final(rid, 60)
    assert final["state"] == "failed"
    assert final["current_wave"] == 0
    first = final["nodes"][0]
    assert first["status"] == "rolled_back"
    assert "unloadable" in final["detail"]
    assert [n["status"] for n in final["nodes"][1:]] == ["pending"] * 4
    assert serving(fleet) == ["press-linear:1.1.0"] * 5  # never stopped serving


def test_shadow_disagreement_blocks_promotion(fleet: Fleet, tmp_path: Path) -> None:
    push(fleet, tmp_path, "2.0.0", weights=(-0.05, -2.1, -0.1), bias=5.0)  # inverted flags
    rid = fleet.cloud.rollout("press-linear:2.0.0", everyone(fleet), [20, 100], **GOOD)
    final = fleet.cloud.wait_final(rid, 90)
    assert final["state"] == "failed"
    # the cloud's gate sees the shadow report (or the node's own refusal): either blocks it
    assert "gate agreement" in final["detail"] or "gate score_drift" in final["detail"]
    assert final["nodes"][0]["metrics"]["agreement"] < 0.9
    assert serving(fleet) == ["press-linear:1.1.0"] * 5


def test_tampered_artifact_and_untrusted_key_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    push(fleet, tmp_path, "1.3.0")
    sha = fleet.cloud.call("GET", "/api/v1/models/press-linear/1.3.0", "read")["artifact_sha256"]
    stored = fleet.cloud.store / sha[:2] / sha
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))  # bit rot / tampering in the cloud's store
    rid = fleet.cloud.rollout("press-linear:1.3.0", everyone(fleet), [20, 100], **GOOD)
    final = fleet.cloud.wait_final(rid, 60)
    assert final["state"] == "failed" and final["nodes"][0]["status"] == "rolled_back"
    assert "refused" in final["detail"] and "sha256" in final["detail"]

    other = generate_key()  # registered in the cloud, but not trusted by the nodes
    fleet.cloud.call(
        "POST", "/api/v1/operator-keys", "admin", json={"public_key": public_key_b64(other)}
    )
    fleet.cloud.push(linear_bundle(tmp_path / "k2", "1.4.0", other))
    rid = fleet.cloud.rollout("press-linear:1.4.0", everyone(fleet), [20, 100], **GOOD)
    final = fleet.cloud.wait_final(rid, 60)
    assert final["state"] == "failed"
    assert "not a trusted key" in final["detail"]
    assert serving(fleet) == ["press-linear:1.1.0"] * 5


def test_offline_node_catches_up(fleet: Fleet, tmp_path: Path) -> None:
    last = nodes(fleet)[-1]
    agent = fleet.agents[last]
    assert agent.stop() == 0
    push(fleet, tmp_path, "1.5.0", weights=(0.05, 2.05, 0.1))
    rid = fleet.cloud.rollout(
        "press-linear:1.5.0", everyone(fleet), [40, 100], **GOOD, offline_after_s=3
    )
    final = fleet.cloud.wait_final(rid, 120)
    assert final["state"] == "succeeded"
    by_node = {n["node_id"]: n["status"] for n in final["nodes"]}
    assert by_node.pop(last) == "assigned"
    assert set(by_node.values()) == {"active"}
    fleet.start_agent(last, agent.database_url, None)  # type: ignore[attr-defined]
    fleet.wait_serving(last, "press-linear:1.5.0", 60)
    deadline = time.monotonic() + 30
    while fleet.cloud.status(rid)["nodes"][-1]["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert serving(fleet) == ["press-linear:1.5.0"] * 5


def test_kill_9_mid_rollout_old_model_keeps_serving(fleet: Fleet, tmp_path: Path) -> None:
    node = nodes(fleet)[0]
    push(fleet, tmp_path, "1.6.0", weights=(0.05, 2.02, 0.1))
    gates = {**GOOD, "shadow_readings": 400}  # a long shadow: the kill lands in it
    rid = fleet.cloud.rollout(
        "press-linear:1.6.0", {"site": "s1", "fleet": fleet.tag}, [100], **gates
    )
    deadline = time.monotonic() + 60
    while fleet.cloud.status(rid)["nodes"][0]["status"] != "loaded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    agent = fleet.agents[node]
    agent.kill()
    # and as if it had died mid-download too: only the first half of the artifact is there
    sha = fleet.cloud.call("GET", "/api/v1/models/press-linear/1.6.0", "read")["artifact_sha256"]
    art = fleet.tmp / "nodes" / node / "artifacts" / f"{sha}.tar"
    data = art.read_bytes()
    art.unlink()
    art.with_suffix(".part").write_bytes(data[: len(data) // 2])
    restarted = fleet.start_agent(node, agent.database_url, None)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20  # restored from the node's state file at start
    while fleet.serving(node) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fleet.serving(node) == "press-linear:1.5.0"  # the old model serves at once
    final = fleet.cloud.wait_final(rid, 120)
    assert final["state"] == "succeeded", final
    assert fleet.serving(node) == "press-linear:1.6.0"
    assert "resuming the download" in restarted.tail(200_000)


def test_two_onnx_signatures_one_stateful(fleet: Fleet, tmp_path: Path) -> None:
    fleet.cloud.push(stateful_bundle(tmp_path / "st", "1.0.0", fleet.key))
    rid = fleet.cloud.rollout(
        "press-stateful:1.0.0",
        everyone(fleet),
        [50, 100],
        shadow_readings=40,
        min_agreement=0.0,
        max_score_drift=1.0,
    )
    final = fleet.cloud.wait_final(rid, 120)
    assert final["state"] == "succeeded", final
    assert serving(fleet) == ["press-stateful:1.0.0"] * 5
    for n in final["nodes"]:
        assert n["metrics"]["error_rate"] == 0.0 and n["metrics"]["readings"] >= 40


def test_rollout_of_the_version_held_as_previous(fleet: Fleet) -> None:
    """X, Y, X again to the same nodes: each node holds the target as its ``previous`` model
    (kept loaded for an instant rollback). A NEW rollout of it must still go through shadow and
    ``active`` reported for that rollout, not a silent swap reported as ``rolled_back`` for the
    old one (which left the rollout ``assigned`` until its wave timed out)."""
    assert serving(fleet) == ["press-stateful:1.0.0"] * 5  # X, from the test before
    gates = {"shadow_readings": 20, "min_agreement": 0.0, "max_score_drift": 1.0}
    for ref in ("press-linear:1.5.0", "press-stateful:1.0.0"):  # Y (held by 4 nodes), X
        t0 = time.monotonic()
        rid = fleet.cloud.rollout(ref, everyone(fleet), [100], **gates, wave_timeout_s=45)
        final = fleet.cloud.wait_final(rid, 60)
        assert final["state"] == "succeeded", final
        assert {n["status"] for n in final["nodes"]} == {"active"}
        for n in final["nodes"]:
            assert n["metrics"]["readings"] >= 20  # shadow ran, reported for this rollout
        assert serving(fleet) == [ref] * 5
        assert time.monotonic() - t0 < 40
