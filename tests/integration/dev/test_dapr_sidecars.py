"""``edgecloud dev up`` with daprd sidecars on a private stack (own state dir, free ports):
``dev status --json`` lists ``daprd.<app-id>`` beside the apps, the agent's ``/infer`` answers
the same through its sidecar, ``dev down`` leaves none; a component daprd cannot load makes
``dev up`` fail with daprd's error and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgecloud.dev import process
from edgecloud.dev.apps import cli
from edgecloud.dev.base import repo_deploy_dir

BAD_COMPONENT = """apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken-pubsub
spec:
  type: pubsub.mqtt3
  version: v1
  metadata:
    - name: qos
      value: "not-a-number"
"""


def _env(state: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "EDGECLOUD_STATE_DIR": str(state),
        "EDGECLOUD_DEV_PORTS": ",".join(str(process.free_port()) for _ in range(4)),
        "EDGECLOUD_DEV_API_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_AGENT_PORT_BASE": str(process.free_port_block(2)),
        "EDGECLOUD_DEV_BRIDGE_PORT_BASE": str(process.free_port_block(2)),
        "EDGECLOUD_DEV_DAPR_PORT_BASE": str(process.free_port_block(12)),  # 3 sidecars x 4 ports
        "EDGECLOUD_DEV_PROMETHEUS_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_ALERTMANAGER_PORT": str(process.free_port()),
        "EDGECLOUD_DEV_WORKER_METRICS_PORT": str(process.free_port()),
    }
    for name in (
        "EDGECLOUD_DEV_POSTGRES_URL",
        "EDGECLOUD_DEV_MQTT_URL",
        "EDGECLOUD_DEV_KAFKA_BOOTSTRAP",
    ):
        env.pop(name, None)
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli(), "dev", *args], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def _status(env: dict[str, str]) -> dict[str, Any]:
    done = _run(env, "status", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(600)
def test_dev_up_starts_a_sidecar_beside_each_app_and_a_bad_component_stops_it(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path / "state")
    try:
        done = _run(env, "up")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        procs = _status(env)["processes"]
        names = {"daprd.cloud-api", "daprd.cloud-worker", "daprd.agent-edge-1"}
        assert names <= set(procs), procs
        assert all(procs[n] and process.pid_alive(procs[n]) for n in names), procs
        dapr_http = int(env["EDGECLOUD_DEV_DAPR_PORT_BASE"]) + 8  # third sidecar's first port
        agent = int(env["EDGECLOUD_DEV_AGENT_PORT_BASE"]) + 1
        body = b'{"device_id": "d-1", "seq": 1, "ts": 0, "values": {"temperature": 1.0}}'
        direct = httpx.post(f"http://127.0.0.1:{agent}/infer", content=body, timeout=10)
        via = httpx.post(
            f"http://127.0.0.1:{dapr_http}/v1.0/invoke/agent-edge-1/method/infer",
            content=body, timeout=10,
        )  # fmt: skip
        assert (via.status_code, via.json()) == (direct.status_code, direct.json())
        pids = [p for p in procs.values() if p]
    finally:
        _run(env, "down", timeout=120)
    assert pids and not [p for p in pids if process.pid_alive(p)]

    deploy = tmp_path / "deploy"
    shutil.copytree(repo_deploy_dir(), deploy)
    (deploy / "dapr" / "edge" / "broken.yaml").write_text(BAD_COMPONENT)
    bad_env = {**env, "EDGECLOUD_DEPLOY_DIR": str(deploy)}
    try:
        done = _run(bad_env, "up")
        assert done.returncode != 0
        assert "daprd.agent-edge-1" in done.stderr and "broken-pubsub" in done.stderr, done.stderr
        left = {n: p for n, p in _status(bad_env)["processes"].items() if p}
        assert left == {}, left
    finally:
        _run(bad_env, "down", timeout=120)
