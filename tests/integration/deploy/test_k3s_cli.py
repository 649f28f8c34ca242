"""``edgecloud k3s apply|status|delete`` against the real API server (token auth, RBAC)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from kube_helpers import kubectl
from typer.testing import CliRunner

from edgecloud.adapters.kube import Kube
from edgecloud.cli import app
from edgecloud.deploy import k3s
from edgecloud.dev import process
from edgecloud.dev.kube import KubeCluster

WORKLOADS = {"edge-agent", "sync-bridge", "mosquitto", "postgres"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["k3s", *args])
    return result.exit_code, result.output


def versions(kube: Kube, target: k3s.Target) -> dict[str, str]:
    """``Kind/name`` -> resourceVersion of every object of ``target`` on the server."""
    out = {}
    for obj in k3s.render(
        target,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "edgecloud-edge", "namespace": target.namespace},
        },
    ):
        live = kube.get(
            obj["apiVersion"],
            obj["kind"],
            obj["metadata"]["name"],
            obj["metadata"].get("namespace"),
        )
        if live is not None:
            out[f"{obj['kind']}/{obj['metadata']['name']}"] = live["metadata"]["resourceVersion"]
    return out


def test_apply_is_idempotent_status_shows_workloads_delete_removes_all(
    dapr_crds: KubeCluster,
) -> None:
    kc = str(dapr_crds.kubeconfig)
    code, out = run(
        "apply", "--node", "edge-1", "--labels", "site=berlin,zone=b", "--kubeconfig", kc
    )
    assert code == 0, out
    kube = Kube(dapr_crds.kubeconfig)
    target = k3s.Target.edge("edge-1", {"site": "berlin", "zone": "b"})
    first = versions(kube, target)
    expected = len(
        k3s.render(target, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    )
    assert len(first) == expected and f"{target.namespace}: {expected} objects applied" in out
    agent = kube.get("apps/v1", "Deployment", "edge-agent", target.namespace)
    assert agent is not None
    notes = agent["spec"]["template"]["metadata"]["annotations"]
    assert notes["edgecloud.io/node-labels"] == "site=berlin,zone=b"
    assert notes["dapr.io/app-id"] == "agent"
    secret = kube.get("v1", "Secret", "edgecloud-edge", target.namespace)
    assert secret is not None and {"db-password", "node-token", "mosquitto-passwd"} <= set(
        secret["data"]
    )
    managers = {m["manager"] for m in agent["metadata"]["managedFields"]}
    assert managers == {"edgecloud"}
    assert agent["spec"]["template"]["spec"]["serviceAccountName"] == "edgecloud-dapr"
    # the sidecar's secretstores.kubernetes: its service account gets that one Secret, no other
    sa = f"--as=system:serviceaccount:{target.namespace}:edgecloud-dapr"
    ns = f"--namespace={target.namespace}"

    def can(*what: str) -> str:
        return kubectl(dapr_crds, "auth", "can-i", sa, ns, *what, check=False).stdout.strip()

    assert can("get", "secret/edgecloud-edge") == "yes"
    assert can("get", "secret/other") == "no"
    assert can("list", "secrets") == "no"
    assert can("get", "secret/edgecloud-edge", "--namespace=default") == "no"

    code, out = run(
        "apply", "--node", "edge-1", "--labels", "site=berlin,zone=b", "--kubeconfig", kc
    )
    assert code == 0, out
    again = versions(kube, target)
    # nothing changed, the Secret included; kube-apiserver 1.34 writes a PVC anew on a no-op
    # apply (its resourceVersion moves, spec and managedFields stay): compared by content
    pvcs = [k for k in first if k.startswith("PersistentVolumeClaim/")]
    assert len(pvcs) == 3
    assert {k: v for k, v in again.items() if k not in pvcs} == {
        k: v for k, v in first.items() if k not in pvcs
    }
    assert set(again) == set(first)

    code, out = run("status", "--node", "edge-1", "--kubeconfig", kc, "--json")
    assert code == 0, out
    rows = json.loads(out)["workloads"]
    assert {r["name"] for r in rows} == WORKLOADS
    # no kubelet runs here: stored and admitted, not ready
    assert all(r["exists"] and r["desired"] >= 1 and not r["is_ready"] for r in rows)
    code, out = run("status", "--node", "edge-1", "--kubeconfig", kc)
    assert "edge-agent" in out and "0/1" in out and "not ready" in out

    code, out = run("delete", "--node", "edge-1", "--kubeconfig", kc)
    assert code == 0, out
    assert f"{expected} objects deleted" in out
    left = {k: v for k, v in versions(kube, target).items() if not k.startswith("Namespace/")}
    assert left == {}
    # the namespace is gone or terminating (its finalizer is the namespace controller's,
    # which runs in kube-controller-manager, not started here)
    ns = kube.get("v1", "Namespace", target.namespace, None)
    assert (
        ns is None
        or ns["metadata"].get("deletion_timestamp")
        or ns["metadata"].get("deletionTimestamp")
    )
    code, out = run("status", "--node", "edge-1", "--kubeconfig", kc, "--json")
    assert code == 1 and not any(r["exists"] for r in json.loads(out)["workloads"])


def test_cloud_side(dapr_crds: KubeCluster) -> None:
    kc = str(dapr_crds.kubeconfig)
    code, out = run("apply", "--cloud", "--kubeconfig", kc)
    assert code == 1 and "--database-url" in out
    url = "postgresql+psycopg://edgecloud:pw@db:5432/cloud"
    dapr = ["--kafka-brokers", "kafka.kafka.svc:9094", "--kafka-sasl-username", "dapr",
            "--kafka-sasl-password", "s3cret", "--alert-webhook-url", "http://hook/a"]  # fmt: skip
    code, out = run("apply", "--cloud", "--database-url", url, "--kubeconfig", kc, *dapr)
    assert code == 0, out
    secret = Kube(dapr_crds.kubeconfig).get("v1", "Secret", "edgecloud-cloud", "edgecloud-cloud")
    assert secret is not None
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert {k: data[k] for k in ("kafka-brokers", "kafka-auth-type", "kafka-sasl-username",
                                 "kafka-sasl-password", "kafka-sasl-mechanism",
                                 "alert-webhook-url", "database-url")} == {
        "kafka-brokers": "kafka.kafka.svc:9094", "kafka-auth-type": "password",
        "kafka-sasl-username": "dapr", "kafka-sasl-password": "s3cret",
        "kafka-sasl-mechanism": "SHA-512", "alert-webhook-url": "http://hook/a",
        "database-url": url,
    }  # fmt: skip
    code, out = run("status", "--cloud", "--kubeconfig", kc, "--json")
    assert {r["name"] for r in json.loads(out)["workloads"]} == {"cloud-api", "cloud-worker"}
    code, out = run("delete", "--cloud", "--kubeconfig", kc)
    assert code == 0, out


def test_clear_errors(dapr_crds: KubeCluster, tmp_path: Path) -> None:
    server = dapr_crds.apiserver
    code, out = run("apply", "--node", "Bad_Node", "--kubeconfig", str(dapr_crds.kubeconfig))
    assert code == 2 and "bad_node" in out

    bad = server.write_kubeconfig(
        tmp_path / "bad-token", "admin", token="not-a-token-of-this-server"
    )
    code, out = run("apply", "--node", "edge-2", "--kubeconfig", str(bad))
    assert code == 1 and "unauthorized" in out, out

    # RBAC: "limited" may read the node's workloads (a Role of get/list), not write anything
    # (the built-in "view" is aggregated by a controller that does not run here)
    ns = "--namespace=edgecloud-edge-edge-3"
    kubectl(dapr_crds, "create", "namespace", "edgecloud-edge-edge-3")
    kubectl(
        dapr_crds,
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=deployments.apps,statefulsets.apps",
        ns,
    )
    kubectl(
        dapr_crds, "create", "rolebinding", "limited-read", "--role=reader", "--user=limited", ns
    )
    limited = server.write_kubeconfig(tmp_path / "limited", "limited")
    code, out = run("status", "--node", "edge-3", "--kubeconfig", str(limited))
    assert code == 1 and "missing" in out, out  # allowed to look: nothing there yet
    code, out = run("apply", "--node", "edge-3", "--kubeconfig", str(limited))
    assert code == 1 and "forbidden by RBAC" in out, out
    assert kubectl(dapr_crds, "get", "deployments", "-n", "edgecloud-edge-edge-3").stdout == ""

    closed = process.free_port()
    gone = tmp_path / "unreachable"
    gone.write_text(
        server.write_kubeconfig(tmp_path / "k", "admin")
        .read_text()
        .replace(f":{server.port}", f":{closed}")
    )
    code, out = run("status", "--node", "edge-1", "--kubeconfig", str(gone))
    assert code == 1 and "cannot reach the API server" in out, out
    code, out = run("status", "--node", "edge-1", "--kubeconfig", str(tmp_path / "none"))
    assert code == 1 and "kubeconfig" in out, out
