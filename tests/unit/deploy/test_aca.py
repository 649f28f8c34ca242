"""deploy/aca/: one Azure Container Apps containerapp YAML per cloud service, valid against the
subset of the published ContainerApp schema in deploy/aca/containerapp.schema.json, and
consistent with the code (roles, settings, the worker's group and topic). They cannot be applied
here (no Azure subscription): this is the check they get."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from test_manifests import known_env_names

from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.topics import kafka_topic

ROOT = Path(__file__).resolve().parents[3]
ACA = ROOT / "deploy" / "aca"
SCHEMA = json.loads((ACA / "containerapp.schema.json").read_text())
APPS = {"api": ["cloud", "api"], "worker": ["cloud", "worker"]}


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((ACA / f"{name}.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.validator_for(SCHEMA)
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_one_file_per_cloud_service() -> None:
    assert sorted(p.stem for p in ACA.glob("*.yaml")) == sorted(APPS)


@pytest.mark.parametrize("name", sorted(APPS))
def test_valid_against_the_published_schema(name: str) -> None:
    assert errors(load(name)) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["properties", "template", "scale", "maxReplicas"], "6", "is not of type"),
        (["properties", "configuration", "ingress", "transport"], "udp", "is not one of"),
        (["properties", "template", "containers", 0, "resource"], {"cpu": 1}, "Additional"),
        (["properties", "configuration", "secrets", 0, "name"], "Database_URL", "does not match"),
    ],
)
def test_the_schema_refuses_what_the_service_would(
    path: list[Any], value: Any, expected: str
) -> None:
    doc = load("api")
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = errors(doc)
    assert found and any(expected in e for e in found), found


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["properties"]["template"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


@pytest.mark.parametrize("name", sorted(APPS))
def test_roles_settings_and_secret_references_are_real(name: str) -> None:
    doc = load(name)
    container = _container(doc)
    assert container["args"][:2] == APPS[name], "the role is the image command's first words"
    assert container["image"].endswith("/edgecloud:0.1.0")
    env = {e["name"]: e for e in container["env"]}
    known = known_env_names()
    unknown = [n for n in env if n.startswith("EDGECLOUD_") and n not in known]
    assert not unknown, f"settings no code reads: {unknown}"
    assert env["EDGECLOUD_ENV"]["value"] == "production"
    secrets = {s["name"]: s for s in doc["properties"]["configuration"]["secrets"]}
    refs = {e["secretRef"] for e in env.values() if "secretRef" in e}
    for rule in doc["properties"]["template"]["scale"]["rules"]:
        for kind in ("custom", "http"):
            refs.update(a["secretRef"] for a in rule.get(kind, {}).get("auth", []))
    assert refs <= set(secrets), f"undefined secrets: {refs - set(secrets)}"
    for secret_name in ("database-url", "kafka-config"):
        assert "value" not in secrets[secret_name], f"{secret_name}: a secret value in the file"
        assert secrets[secret_name]["keyVaultUrl"].startswith("https://")
    for key in ("EDGECLOUD_DATABASE_URL", "EDGECLOUD_KAFKA_CONFIG", "OPENAI_API_KEY"):
        assert "secretRef" in env[key], f"{key} must come from a secret"


def test_worker_scales_on_the_kafka_lag_of_its_own_group_and_topic() -> None:
    doc = load("worker")
    scale = doc["properties"]["template"]["scale"]
    (rule,) = [r for r in scale["rules"] if r.get("custom", {}).get("type") == "kafka"]
    meta = rule["custom"]["metadata"]
    env = {e["name"]: e.get("value") for e in _container(doc)["env"]}
    assert meta["consumerGroup"] == DEFAULT_GROUP_ID == env["EDGECLOUD_KAFKA_GROUP_ID"]
    assert meta["topic"] == kafka_topic("reading")
    assert meta["bootstrapServers"] == env["EDGECLOUD_KAFKA_BOOTSTRAP"]
    assert int(meta["lagThreshold"]) > 0
    params = {a["triggerParameter"] for a in rule["custom"]["auth"]}
    assert params == {"sasl", "username", "password"}
    assert 1 <= scale["minReplicas"] <= scale["maxReplicas"] <= 6, "a replica per partition at most"
