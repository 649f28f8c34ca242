"""A private Kubernetes API server (etcd + kube-apiserver, ``dev/kube.py``) for this session's
deployment tests (one per test module: a deleted namespace stays Terminating without
controllers), on free ports in a temporary state dir, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kube_helpers import ROOT, kubectl

from edgecloud.dev.kube import KubeCluster


@pytest.fixture(scope="module")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = KubeCluster(tmp_path_factory.mktemp("kube-state"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def dapr_crds(kube_cluster: KubeCluster) -> KubeCluster:
    """k3s/crds applied server-side and established (the Dapr kinds the manifests use)."""
    crds = str(ROOT / "k3s" / "crds")
    kubectl(kube_cluster, "apply", "--server-side", "--field-manager=edgecloud-test", "-k", crds)
    kubectl(
        kube_cluster,
        "wait",
        "--for=condition=established",
        "--timeout=120s",
        "crd/components.dapr.io",
        "crd/configurations.dapr.io",
    )
    return kube_cluster
