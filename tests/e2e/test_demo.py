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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from edgecloud.dev import process
from edgecloud.dev.apps import cli


def _prometheus_scrapes_every_app(url: str) -> None:
    """The stack's Prometheus scrapes the API (with its token), the worker and each node's
    agent and bridge, every target healthy, and knows its Alertmanager."""
    wanted = {"edgecloud-api": 1, "edgecloud-worker": 1, "edgecloud-edge": 2, "edgecloud-bridge": 2}

    def all_up() -> bool:
        targets = httpx.get(f"{url}/api/v1/targets", timeout=5.0).json()["data"]["activeTargets"]
        up: dict[str, int] = {}
        for t in targets:
            if t["health"] == "up":
                up[t["labels"]["job"]] = up.get(t["labels"]["job"], 0) + 1
        return all(up.get(job, 0) == n for job, n in wanted.items())

    process.wait_until(all_up, 60.0, "every app scraped by Prometheus")
    managers = httpx.get(f"{url}/api/v1/alertmanagers", timeout=5.0).json()["data"]
    assert len(managers["activeAlertmanagers"]) == 1


def _trace_of_one_reading(cloud_url: str, env: dict[str, str]) -> None:
    """``edgecloud trace`` of a reading stored in the cloud shows every hop, in path order."""
    url = cloud_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT device_id, seq FROM readings ORDER BY seq LIMIT 1").fetchone()
    assert row is not None
    done = subprocess.run(
        [*cli(), "trace", row[0], str(row[1]), "--json"], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    hops = [step["hop"] for step in json.loads(done.stdout)["steps"]]
    for hop in ("device ts", "edge received", "reading edge.stored", "reading bridge.spooled",
                "reading bridge.acked", "reading cloud.stored", "cloud stored"):  # fmt: skip
        assert hop in hops, hops
    assert hops.index("reading edge.stored") < hops.index("reading bridge.spooled")
    assert hops.index("reading bridge.acked") < hops.index("reading cloud.stored")


def _registered_devices_reach_the_cloud(info: dict[str, Any]) -> None:
    """Issue 16: ``dev up`` registered the simulated devices; one with a password (plain
    listener) and one with a certificate (TLS listener, MQTT port + 1) each publish a reading
    with ``mosquitto_pub``, and both readings come back from the cloud's REST API (agent ->
    bridge -> Kafka -> worker -> Postgres)."""
    by_auth = {d["auth"]: d for d in info["devices"]}
    pw_dev, cert_dev, tls = by_auth["password"], by_auth["cert"], info["mqtt_tls"]
    assert tls["device_id"] and tls["port"] == int(info["mqtt_url"].rsplit(":", 1)[1]) + 1
    port = info["mqtt_url"].rsplit(":", 1)[1]
    seq = time.time_ns() // 1000  # above the simulator's epoch-millisecond seqs
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def body(device: str) -> str:
        return json.dumps({"device_id": device, "seq": seq, "ts": ts, "values": {"t": 21.5}})

    pid = pw_dev["device_id"]
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "5", "-q", "1", "-u", pid,
         "-i", pid, "-P", pw_dev["password"], "-t", f"devices/{pid}/telemetry", "-m", body(pid)],
        check=True, timeout=30,
    )  # fmt: skip
    cid = cert_dev["device_id"]
    subprocess.run(
        ["mosquitto_pub", "-h", tls["host"], "-p", str(tls["port"]), "--cafile", tls["ca_file"],
         "--cert", cert_dev["cert_file"], "--key", cert_dev["key_file"], "-V", "5", "-q", "1",
         "-t", f"devices/{cid}/telemetry", "-m", body(cid)],
        check=True, timeout=30,
    )  # fmt: skip
    read = {"Authorization": f"Bearer {info['tokens']['read']}"}

    def stored(device: str) -> bool:
        url = f"{info['cloud_api_url']}/api/v1/devices/{device}/readings?limit=500"
        items = httpx.get(url, headers=read, timeout=10.0).json().get("items", [])
        return any(r["seq"] == seq and r["values"] == {"t": 21.5} for r in items)

    process.wait_until(lambda: stored(pid), 60.0, f"{pid}'s reading in the cloud")
    process.wait_until(lambda: stored(cid), 60.0, f"{cid}'s reading in the cloud")


@pytest.mark.timeout(480)
def test_demo_two_nodes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # MQTT port + 1 is Mosquitto's TLS listener
    mqtt = process.free_port_block(2)
    ports = ",".join(
        str(p) for p in (process.free_port(), mqtt, process.free_port(), process.free_port())
    )
    env = {
        **os.environ,
        "EDGECLOUD_STATE_DIR": str(state),
        "EDGECLOUD_DEV_PORTS": ports,
        "EDGECLOUD_DEV_API_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_AGENT_PORT_BASE": str(process.free_port_block(3)),
        "EDGECLOUD_DEV_BRIDGE_PORT_BASE": str(process.free_port_block(3)),
        "EDGECLOUD_DEV_DAPR_PORT_BASE": str(
            process.free_port_block(16)
        ),  # 4 daprd sidecars x 4 ports
        "EDGECLOUD_DEV_PROMETHEUS_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_ALERTMANAGER_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_WORKER_METRICS_PORT": str(process.free_port()),
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
        info = json.loads(status.stdout)
        pids = [p for p in info["processes"].values() if p]
        assert info["processes"]["prometheus"] and info["processes"]["alertmanager"]
        _prometheus_scrapes_every_app(info["prometheus_url"])
        _trace_of_one_reading(info["cloud_database_url"], env)
        _registered_devices_reach_the_cloud(info)
    finally:
        subprocess.run([*cli(), "dev", "down"], env=env, capture_output=True, timeout=120)
    stand_in = state / "run" / "app-openai_standin.pid"
    assert not stand_in.exists()
    assert pids and not [p for p in pids if process.pid_alive(p)]
