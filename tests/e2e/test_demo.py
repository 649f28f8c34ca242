"""``edgecloud dev up --demo`` on a private stack (own state dir, free ports): exit code 0,
nothing lost between the devices, the edge and the cloud, both rollouts succeeded, the
learning loop (fault shift -> labels -> retrain -> evaluation -> shadow rollout) ended with the
retrained version active and its held-out recall above the old one's by the margin; then
``dev down`` leaves no process of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecloud.dev import process
from edgecloud.dev.apps import cli


def _free_base(count: int) -> int:
    """A port p with p+1..p+count free (apps of node i listen on base + i)."""
    for _ in range(50):
        base = process.free_port()
        if not any(process.port_open("127.0.0.1", base + i) for i in range(1, count + 1)):
            return base
    pytest.skip("no free port range")


@pytest.mark.timeout(480)
def test_demo_two_nodes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "EDGECLOUD_STATE_DIR": str(state),
        "EDGECLOUD_DEV_PORTS": ",".join(str(process.free_port()) for _ in range(4)),
        "EDGECLOUD_DEV_API_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_AGENT_PORT_BASE": str(_free_base(2)),
        "EDGECLOUD_DEV_BRIDGE_PORT_BASE": str(_free_base(2)),
        "EDGECLOUD_DEV_DAPR_PORT_BASE": str(_free_base(15)),  # 4 daprd sidecars x 4 ports
    }
    for name in ("EDGECLOUD_DEV_POSTGRES_URL", "EDGECLOUD_DEV_MQTT_URL"):
        env.pop(name, None)
    out = tmp_path / "summary.json"
    try:
        done = subprocess.run(
            [*cli(), "dev", "up", "--demo", "--nodes", "2", "--duration", "20",
             "--devices-per-node", "4", "--json", str(out)],
            env=env, capture_output=True, text=True, timeout=450, check=False,
        )  # fmt: skip
        print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        summary = json.loads(out.read_text())
        r = summary["readings"]
        assert summary["ok"] is True
        assert r["published"] > 0
        assert r["published"] == r["acknowledged_by_broker"]
        assert r["stored_at_edge"] == r["published"] == r["stored_in_cloud"]
        assert r["lost_edge"] == r["lost_cloud"] == 0
        # each node stored only its own devices, and the cloud agrees per node
        assert sum(r["stored_at_edge_per_node"].values()) == r["published"]
        assert r["stored_in_cloud_per_node"] == {
            k: v for k, v in r["stored_at_edge_per_node"].items() if v
        }
        for version in ("1.0.0", "1.1.0"):
            ro = summary["rollouts"][version]
            assert ro["state"] == "succeeded"
            assert set(ro["nodes"].values()) == {"active"}
        learned = summary["learning"]
        assert learned["accepted"] is True and learned["parent_version"] == "1.1.0"
        assert learned["ground_truth_labels"] > 0 and learned["operator_labels"] > 0
        active, candidate = learned["active"], learned["candidate"]
        assert candidate["recall"] >= active["recall"] + learned["min_gain"]
        assert candidate["stuck_recall"] > active["stuck_recall"]
        ro = summary["rollouts"][learned["version"]]
        assert ro["state"] == "succeeded" and set(ro["nodes"].values()) == {"active"}
        assert set(summary["active_versions"].values()) == {
            f"sensor-anomaly:{learned['version']} (loaded)"
        }
        assert "token=" in summary["dashboard_url"]
        assert "demo summary" in done.stdout
        status = subprocess.run(
            [*cli(), "dev", "status", "--json"], env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        pids = [p for p in json.loads(status.stdout)["processes"].values() if p]
    finally:
        subprocess.run([*cli(), "dev", "down"], env=env, capture_output=True, timeout=120)
    stand_in = state / "run" / "app-openai_standin.pid"
    assert not stand_in.exists()
    assert pids and not [p for p in pids if process.pid_alive(p)]
