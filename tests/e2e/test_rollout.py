"""Issue 6 end to end: five edge agents (separate processes) on live readings, the real cloud
API process, signed bundles from the registry, staged rollouts with shadow gates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgecloud.bench.rollout_models import linear_bundle, stateful_bundle
from edgecloud.dev.stack import Infra
from rollout_fleet import Devices, Fleet, make_fleet

NODES = [f"site-{i}" for i in range(1, 6)]
V1 = "press-linear:1.0.0"


@pytest.fixture
def fleet(stack: Infra, tmp_path: Path) -> Iterator[Fleet]:
    fleet = make_fleet(stack, tmp_path)
    v1 = linear_bundle(tmp_path / "v1", "1.0.0", fleet.key)
    devices = Devices(stack, [f"{fleet.tag}-d{i}" for i in range(4)]).start()
    try:
        for i, node in enumerate(NODES):
            fleet.add_node(f"{fleet.tag}-{node}", {"site": f"s{i + 1}", "fleet": fleet.tag}, v1)
        yield fleet
    finally:
        devices.stop()
        fleet.stop()


def nodes(fleet: Fleet) -> list[str]:
    return sorted(fleet.agents)


def test_full_rollout_across_waves(fleet: Fleet, tmp_path: Path) -> None:
    fleet.cloud.push(linear_bundle(tmp_path / "v11", "1.1.0", fleet.key, weights=(0.05, 2.1, 0.1)))
    rid = fleet.cloud.rollout("press-linear:1.1.0", {"fleet": fleet.tag}, [20, 60, 100],
                              shadow_readings=40, min_agreement=0.9, max_score_drift=0.1)  # fmt: skip
    final = fleet.cloud.wait_final(rid, 120)
    assert final["state"] == "succeeded", final
    assert [n["wave"] for n in final["nodes"]] == [0, 1, 1, 2, 2]
    assert {n["status"] for n in final["nodes"]} == {"active"}
    for n in final["nodes"]:
        m = n["metrics"]
        assert m["readings"] >= 40 and m["agreement"] >= 0.9 and m["error_rate"] == 0.0
        assert m["swap_ms"] < 100.0
    for node in nodes(fleet):
        assert fleet.serving(node) == "press-linear:1.1.0"
