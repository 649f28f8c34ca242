"""``edgecloud k3s``'s objects for a node, and the node Secret's values (no cluster here; the
real API server is in tests/integration/deploy)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgecloud.core.errors import ValidationFailed
from edgecloud.deploy import k3s
from edgecloud.deploy.secrets import (
    CLOUD_DAPR_DEFAULTS,
    MQTT_ACCOUNTS,
    cloud_secret,
    edge_secret,
    mosquitto_hash,
    mosquitto_verify,
)


def test_mosquitto_hash_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("u:s3cret-pw\n")
    subprocess.run(["mosquitto_passwd", "-U", str(path)], check=True)
    hashed = path.read_text().strip().split(":", 1)[1]
    salt = base64.b64decode(hashed.split("$")[3])
    assert mosquitto_hash("s3cret-pw", salt) == hashed
    assert mosquitto_verify("s3cret-pw", hashed)
    assert not mosquitto_verify("other", hashed)


def test_edge_secret_generates_once_and_keeps_what_is_there() -> None:
    first = edge_secret({}, {})
    assert len(first["db-password"]) >= 32 and first["operator-public-keys"] == ""
    users = [line.split(":")[0] for line in first["mosquitto-passwd"].splitlines()]
    assert users == list(MQTT_ACCOUNTS)
    assert first["dapr-mqtt-url"] == (
        f"tcp://dapr-edge:{first['dapr-mqtt-password']}@mosquitto:1883"
    )
    assert first["dapr-config-connection-string"] == (
        f"postgresql://edgecloud:{first['db-password']}@postgres:5432/edge"
    )
    assert edge_secret(first, {}) == first  # a re-apply changes nothing, salt included
    second = edge_secret(first, {"bridge-mqtt-password": "new-bridge-password"})
    assert second["mosquitto-passwd"] != first["mosquitto-passwd"]
    line = next(x for x in second["mosquitto-passwd"].splitlines() if x.startswith("bridge:"))
    assert mosquitto_verify("new-bridge-password", line.split(":", 1)[1])
    assert second["db-password"] == first["db-password"]
    with pytest.raises(ValidationFailed, match="unknown edge secret keys"):
        edge_secret({}, {"db-pasword": "x"})


def test_cloud_secret_needs_a_database_url() -> None:
    with pytest.raises(ValidationFailed, match="--database-url"):
        cloud_secret({}, {})
    kept = cloud_secret({"database-url": "postgresql+psycopg://a@b/c"}, {"openai-api-key": ""})
    assert kept == {"database-url": "postgresql+psycopg://a@b/c", **CLOUD_DAPR_DEFAULTS}


def test_cloud_secret_holds_every_key_the_cloud_dapr_components_name() -> None:
    import yaml

    ROOT = Path(__file__).resolve().parents[3]

    refs = {
        item["secretKeyRef"]["key"]
        for doc in yaml.safe_load_all((ROOT / "k3s" / "cloud" / "dapr.yaml").read_text())
        if doc and doc["kind"] == "Component"
        for item in doc["spec"]["metadata"]
        if "secretKeyRef" in item
    }
    data = cloud_secret({}, {"database-url": "postgresql+psycopg://a@b/c"})
    assert refs and refs <= set(data), sorted(refs - set(data))
    sasl = cloud_secret(
        data, {"kafka-sasl-username": "dapr", "kafka-sasl-password": "pw", "kafka-brokers": "k:9"}
    )
    assert (sasl["kafka-auth-type"], sasl["kafka-brokers"], sasl["database-url"]) == (
        "password", "k:9", "postgresql+psycopg://a@b/c"
    )  # fmt: skip
    assert cloud_secret(sasl, {}) == sasl  # a re-apply keeps what is there
    with pytest.raises(ValidationFailed, match="password"):
        cloud_secret(data, {"kafka-sasl-username": "dapr"})
    with pytest.raises(ValidationFailed, match="mechanism"):
        cloud_secret(data, {"kafka-sasl-mechanism": "MD5"})


def test_edge_secret_holds_every_key_the_edge_dapr_components_name() -> None:
    import yaml

    ROOT = Path(__file__).resolve().parents[3]

    docs = list(yaml.safe_load_all((ROOT / "k3s" / "edge" / "dapr.yaml").read_text()))
    components = {d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Component"}
    # the same components as the repo's own folders (deploy/dapr/edge, deploy/dapr/edge-config)
    local = {
        d["metadata"]["name"]
        for folder in ("edge", "edge-config")
        for f in sorted((ROOT / "deploy" / "dapr" / folder).glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d and d["spec"]["type"].split(".")[0] != "secretstores"
    }
    assert set(components) == local
    refs = {
        item["secretKeyRef"]["key"]
        for d in components.values()
        for item in d["spec"]["metadata"]
        if "secretKeyRef" in item
    }
    assert refs <= set(edge_secret({}, {})), sorted(refs - set(edge_secret({}, {})))


@pytest.mark.parametrize("node", ["Edge-1", "edge_1", "-edge", "edge-", "", "a" * 49, "a.b"])
def test_invalid_node_names_are_refused(node: str) -> None:
    with pytest.raises(ValidationFailed, match="bad_node"):
        k3s.Target.edge(node)


def test_invalid_labels_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="bad_labels"):
        k3s.Target.edge("edge-1", {"site": "a b"})


def _secret(target: k3s.Target) -> dict[str, Any]:
    meta = {"name": "edgecloud-edge", "namespace": target.namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta}


def test_render_makes_the_manifests_node_specific() -> None:
    target = k3s.Target.edge("edge-7", {"zone": "b", "site": "berlin"})
    assert target.namespace == "edgecloud-edge-edge-7" and target.labels == "site=berlin,zone=b"
    objects = k3s.render(target, _secret(target))
    kinds = [o["kind"] for o in objects]
    assert kinds[:2] == ["Namespace", "Secret"] and kinds.count("Namespace") == 1
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "Component"} <= set(kinds)
    for obj in objects[1:]:
        assert obj["metadata"]["namespace"] == target.namespace, obj["metadata"]["name"]
    for obj in objects:
        assert obj["metadata"]["labels"]["edgecloud.io/node-id"] == "edge-7"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "edgecloud"
    config = next(o for o in objects if o["metadata"]["name"] == "edgecloud-edge-config")
    assert config["data"]["EDGECLOUD_NODE_ID"] == "edge-7"
    agent = next(o for o in objects if o["metadata"]["name"] == "edge-agent")
    notes = agent["spec"]["template"]["metadata"]["annotations"]
    assert notes["edgecloud.io/node-id"] == "edge-7"
    assert notes["edgecloud.io/node-labels"] == "site=berlin,zone=b"
    assert notes["dapr.io/enabled"] == "true" and notes["dapr.io/app-id"] == "agent"
    env = {e["name"]: e for e in agent["spec"]["template"]["spec"]["containers"][0]["env"]}
    path = env["EDGECLOUD_NODE_LABELS"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert path == "metadata.annotations['edgecloud.io/node-labels']"


def test_render_cloud() -> None:
    target = k3s.Target.cloud()
    objects = k3s.render(target, _secret(target))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "cloud-api"), ("Deployment", "cloud-worker")} <= names
    assert all(o["metadata"].get("namespace") == "edgecloud-cloud" for o in objects[1:])
