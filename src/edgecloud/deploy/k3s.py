"""``edgecloud k3s``: one edge node (or the cloud side) on a Kubernetes cluster, from ``k3s/``.

The objects are the repo's manifests (``k3s/edge``, ``k3s/cloud``: their kustomization's
resource files), made node-specific here: namespace ``edgecloud-edge-<node>``, the node id in
the ConfigMap and the pods' annotations, the node's labels in the annotation
``edgecloud.io/node-labels`` that the agent reads through the downward API
(``EDGECLOUD_NODE_LABELS``), and a Secret of generated passwords. Everything is written by
server-side apply with one field manager, so a second apply changes nothing: the Secret's
values are read back from the cluster and kept (a password is generated only once).

``Cluster`` is the port (``adapters.kube.Kube`` is its real adapter); functions here take it.
"""

from __future__ import annotations

import base64
import copy
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from edgecloud.core.errors import ConfigError, ValidationFailed
from edgecloud.deploy.secrets import cloud_secret, edge_secret

Manifest = dict[str, Any]
FIELD_MANAGER = "edgecloud"
MANAGED = {"app.kubernetes.io/managed-by": "edgecloud"}
NODE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")  # a DNS label under 63 chars
LABEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
WORKLOADS = ("Deployment", "StatefulSet")


class Cluster(Protocol):
    def apply(self, obj: Manifest, field_manager: str, dry_run: bool = False) -> Manifest: ...
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> Manifest | None: ...
    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool: ...
    def served(self, api_version: str, kind: str) -> bool: ...


@dataclass(frozen=True)
class Target:
    """What one ``k3s`` command acts on: an edge node or the cloud side."""

    role: str  # "edge" or "cloud"
    namespace: str
    node: str | None = None
    labels: str = ""

    @classmethod
    def edge(cls, node: str, labels: dict[str, str] | None = None) -> Target:
        if not NODE_RE.match(node):
            raise ValidationFailed(
                "bad_node",
                f"node name {node!r}: lower-case letters, digits and '-', 1-48 characters, "
                "starting and ending with a letter or digit (it names the namespace)",
            )
        for key, value in (labels or {}).items():
            if not LABEL_RE.match(key) or (value and not LABEL_RE.match(value)):
                raise ValidationFailed(
                    "bad_labels", f"label {key}={value}: letters, digits, '.', '_', '-' only"
                )
        text = ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
        return cls("edge", f"edgecloud-edge-{node}", node, text)

    @classmethod
    def cloud(cls) -> Target:
        return cls("cloud", "edgecloud-cloud")


def k3s_dir() -> Path:
    """``k3s/`` of the checkout (``EDGECLOUD_K3S_DIR`` overrides)."""
    env = os.environ.get("EDGECLOUD_K3S_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "k3s" / "edge" / "kustomization.yaml").is_file():
            return parent / "k3s"
    raise ConfigError("cannot find k3s/ (set EDGECLOUD_K3S_DIR to the checkout's k3s/)")


def load(folder: Path) -> list[Manifest]:
    """The documents of a kustomization's resource files, in its order (no generators)."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[Manifest] = []
    for resource in kust["resources"]:
        docs.extend(d for d in yaml.safe_load_all((folder / resource).read_text()) if d)
    return docs


def render(target: Target, secret: Manifest, folder: Path | None = None) -> list[Manifest]:
    """The objects of ``target`` in apply order: Namespace, Secret, the manifests."""
    docs = load((folder or k3s_dir()) / target.role)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target.namespace}}
    out = [ns, secret]
    out.extend(d for d in docs if d["kind"] != "Namespace")
    for doc in out:
        meta = doc.setdefault("metadata", {})
        labels = meta.setdefault("labels", {})
        labels.update(MANAGED)
        if target.node:
            labels["edgecloud.io/node-id"] = target.node
        if doc["kind"] != "Namespace":
            meta["namespace"] = target.namespace
        for subject in doc.get("subjects") or []:  # RoleBinding: the service account's namespace
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = target.namespace
        if target.node:
            _node_specific(doc, target)
    return out


def _node_specific(doc: Manifest, target: Target) -> None:
    if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "edgecloud-edge-config":
        doc["data"]["EDGECLOUD_NODE_ID"] = target.node
        doc["data"]["EDGECLOUD_NODE_LABELS"] = target.labels
    if doc["kind"] in WORKLOADS:
        template = doc["spec"]["template"]["metadata"]
        notes = template.setdefault("annotations", {})
        notes["edgecloud.io/node-id"] = target.node
        if "edgecloud.io/node-labels" in notes:  # the agent reads it (downward API)
            notes["edgecloud.io/node-labels"] = target.labels


def secret_for(
    cluster: Cluster, target: Target, given: dict[str, str], node_token: Callable[[], str] | None
) -> Manifest:
    """The Secret to apply: values on the cluster are kept, ``given`` ones win, the rest made."""
    name = f"edgecloud-{target.role}"
    current = cluster.get("v1", "Secret", name, target.namespace)
    old = {k: base64.b64decode(v).decode() for k, v in ((current or {}).get("data") or {}).items()}
    if target.role == "edge":
        if node_token is not None and "node-token" not in old and "node-token" not in given:
            given = {**given, "node-token": node_token()}
        data = edge_secret(old, given)
    else:
        data = cloud_secret(old, given)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": target.namespace},
        "type": "Opaque",
        "data": encoded,
    }


def apply(cluster: Cluster, objects: list[Manifest], dry_run: bool = False) -> list[Manifest]:
    """Server-side apply every object, after a server-side dry run of all of them (a 422 on
    the last one leaves nothing half-applied). The namespace itself is applied first: the
    dry run of a namespaced object needs it (with ``dry_run`` it must exist already)."""
    _check_kinds(cluster, objects)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    done = [cluster.apply(copy.deepcopy(ns), FIELD_MANAGER, dry_run=dry_run) for ns in namespaces]
    checked = [cluster.apply(copy.deepcopy(o), FIELD_MANAGER, dry_run=True) for o in rest]
    if dry_run:
        return done + checked
    return done + [cluster.apply(copy.deepcopy(o), FIELD_MANAGER) for o in rest]


def _check_kinds(cluster: Cluster, objects: list[Manifest]) -> None:
    for api_version, kind in sorted({(o["apiVersion"], o["kind"]) for o in objects}):
        if not cluster.served(api_version, kind):
            raise ConfigError(
                f"the cluster does not serve {kind} ({api_version}): for dapr.io install Dapr "
                "(dapr init -k) or the CRDs of k3s/crds (kubectl apply -k k3s/crds)"
            )


def status(cluster: Cluster, objects: list[Manifest]) -> list[dict[str, Any]]:
    """Each workload's readiness: desired, ready, updated replicas (absent: ``exists`` false)."""
    rows: list[dict[str, Any]] = []
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        live = cluster.get(obj["apiVersion"], obj["kind"], _name(obj), _ns(obj))
        spec, st = (live or {}).get("spec") or {}, (live or {}).get("status") or {}
        desired = int(spec.get("replicas") or 0)
        ready = int(st.get("ready_replicas") or st.get("readyReplicas") or 0)
        updated = int(st.get("updated_replicas") or st.get("updatedReplicas") or 0)
        rows.append(
            {
                "kind": obj["kind"],
                "name": _name(obj),
                "namespace": _ns(obj),
                "exists": live is not None,
                "desired": desired,
                "ready": ready,
                "updated": updated,
                "is_ready": live is not None and ready >= desired,
            }
        )
    return rows


def delete(cluster: Cluster, objects: list[Manifest]) -> list[str]:
    """Delete every object, namespace last; returns ``Kind/name`` of those that were there."""
    gone: list[str] = []
    for obj in reversed(objects):
        if cluster.delete(obj["apiVersion"], obj["kind"], _name(obj), _ns(obj)):
            gone.append(f"{obj['kind']}/{_name(obj)}")
    return gone


def _name(obj: Manifest) -> str:
    return str(obj["metadata"]["name"])


def _ns(obj: Manifest) -> str | None:
    ns = obj["metadata"].get("namespace")
    return str(ns) if ns else None
