"""``edgecloud k3s apply --cloud-url``: the node token in the node's Secret is one the real
cloud API made (POST /api/v1/tokens, scope node) and accepts for that node alone."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx
from live_api import live_api
from typer.testing import CliRunner

from edgecloud.adapters.kube import Kube
from edgecloud.cli import app
from edgecloud.dev.kube import KubeCluster, k8s_binary

ROOT = Path(__file__).resolve().parents[3]


def test_node_token_comes_from_the_cloud_api(pg_url: str, tmp_path: Path) -> None:
    cluster = KubeCluster(tmp_path / "kube-state")
    try:
        cluster.start()
        kubectl = [k8s_binary("kubectl"), f"--kubeconfig={cluster.kubeconfig}"]
        crds = str(ROOT / "k3s" / "crds")
        subprocess.run([*kubectl, "apply", "--server-side", "-k", crds], check=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=established", "crd/components.dapr.io"],
            check=True,
        )
        with live_api(pg_url, tmp_path) as api:
            args = ["k3s", "apply", "--node", "edge-9", "--kubeconfig", str(cluster.kubeconfig)]
            args += ["--cloud-url", api.base, "--cloud-token", api.tokens["admin"]]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            secret = Kube(cluster.kubeconfig).get(
                "v1", "Secret", "edgecloud-edge", "edgecloud-edge-edge-9"
            )
            assert secret is not None
            token = base64.b64decode(secret["data"]["node-token"]).decode()
            listed = httpx.get(f"{api.base}/api/v1/tokens", headers=api.h("admin")).json()
            mine = [t for t in listed if t["name"] == "k3s-edge-9"]
            assert len(mine) == 1 and mine[0]["scope"] == "node"
            assert mine[0]["node_id"] == "edge-9"
            own = httpx.get(
                f"{api.base}/api/v1/nodes/edge-9/desired",
                headers={"Authorization": f"Bearer {token}"},
            )
            other = httpx.get(
                f"{api.base}/api/v1/nodes/edge-8/desired",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert own.status_code != 401 and other.status_code == 403, (own.text, other.text)
            args = ["k3s", "apply", "--node", "edge-10", "--kubeconfig", str(cluster.kubeconfig)]
            args += ["--cloud-url", api.base, "--cloud-token", "wrong-token"]
            bad = CliRunner().invoke(app, args)
            assert bad.exit_code == 1 and "answered 401" in bad.output, bad.output
    finally:
        cluster.stop()
