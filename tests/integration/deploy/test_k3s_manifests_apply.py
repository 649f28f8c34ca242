"""Every manifest under k3s/ on a real kube-apiserver: ``kubectl kustomize``, a server-side
dry run, then server-side apply; schema (OpenAPI, CRD) and admission errors fail the test, and
a deliberately broken manifest is refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kube_helpers import ROOT, kubectl

from edgecloud.dev.kube import KubeCluster

KUSTOMIZATIONS = ["edge", "cloud", "monitoring"]
APPLY = ["apply", "--server-side", "--field-manager=edgecloud-test", "-f", "-"]


def build(cluster: KubeCluster, folder: str) -> list[dict[str, Any]]:
    out = kubectl(cluster, "kustomize", str(ROOT / "k3s" / folder)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_every_manifest_applies_server_side(dapr_crds: KubeCluster, folder: str) -> None:
    docs = build(dapr_crds, folder)
    assert len(docs) >= 5
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert len(namespaces) == 1  # dry runs of namespaced objects need it: applied first
    kubectl(dapr_crds, *APPLY, stdin=yaml.safe_dump(namespaces[0]))
    text = yaml.safe_dump_all(docs)
    dry = kubectl(dapr_crds, *APPLY[:-2], "--dry-run=server", "-f", "-", stdin=text)
    assert dry.stdout.count("(server dry run)") == len(docs), dry.stdout
    done = kubectl(dapr_crds, *APPLY, stdin=text)
    assert done.stdout.count("serverside-applied") == len(docs), done.stdout
    for doc in docs:  # each one is stored, where the kustomization put it
        ns = doc["metadata"].get("namespace")
        where = [f"--namespace={ns}"] if ns else []
        ref = f"{doc['kind']}.{doc['apiVersion'].split('/')[0]}/{doc['metadata']['name']}"
        if "/" not in doc["apiVersion"]:
            ref = f"{doc['kind']}/{doc['metadata']['name']}"
        got = kubectl(dapr_crds, "get", ref, *where, "-o", "json").stdout
        assert yaml.safe_load(got)["metadata"]["name"] == doc["metadata"]["name"]


def _broken(cluster: KubeCluster, case: str) -> str:
    docs = build(cluster, "edge")
    agent = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "edge-agent"
    )
    component = next(d for d in docs if d["kind"] == "Component")
    if case == "schema":  # replicas must be an integer
        agent["spec"]["replicas"] = "one"
    elif case == "unknown-field":  # strict field validation of server-side apply
        agent["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    elif case == "crd":  # the Dapr CRD requires spec.version
        del component["spec"]["version"]
    elif case == "admission":  # a Service port the API server refuses
        svc = next(d for d in docs if d["kind"] == "Service")
        svc["spec"]["ports"][0]["port"] = 70000
    return yaml.safe_dump_all(docs)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("schema", "replicas"),
        ("unknown-field", "imagePullPolicyy"),
        ("crd", "spec.version"),
        ("admission", "70000"),
    ],
)
def test_a_broken_manifest_is_refused(dapr_crds: KubeCluster, case: str, message: str) -> None:
    text = _broken(dapr_crds, case)
    kubectl(
        dapr_crds,
        *APPLY,
        stdin=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edgecloud-edge"}}
        ),
    )
    done = kubectl(dapr_crds, *APPLY[:-2], "--dry-run=server", "-f", "-", stdin=text, check=False)
    assert done.returncode != 0, done.stdout
    assert message in done.stderr, done.stderr
