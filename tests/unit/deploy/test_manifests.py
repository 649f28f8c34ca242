"""The deployment files (k3s manifests, compose files) parse, and every edgecloud setting they
set is one that the code reads: a renamed variable must not silently stop configuring a pod."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from edgecloud.cloud.registry.settings import RegistrySettings
from edgecloud.cloud.settings import CloudSettings
from edgecloud.edge.settings import EdgeSettings
from edgecloud.sync.settings import BridgeSettings

ROOT = Path(__file__).resolve().parents[3]
SETTINGS: list[type[BaseSettings]] = [
    EdgeSettings,  # with the inference, model agent and device agent fields (one tree)
    BridgeSettings,
    CloudSettings,
    RegistrySettings,
]
# Read by something other than a settings class: the compose/k3s files use this one to build
# EDGECLOUD_DATABASE_URL with Kubernetes' $(VAR) expansion.
NOT_SETTINGS = {"EDGECLOUD_DB_PASSWORD"}


def known_env_names() -> set[str]:
    names: set[str] = set()
    for cls in SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str):
                names.add(alias.upper())
            elif isinstance(alias, AliasChoices):
                names.update(str(a).upper() for a in alias.choices)
            else:
                names.add((prefix + (info.alias or field_name)).upper())
    return names


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    compose = [ROOT / "compose.edge.yaml", ROOT / "compose.cloud.yaml"]
    files = [*sorted((ROOT / "k3s").rglob("*.yaml")), *compose]
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path}: a YAML document that is not a mapping"
            yield path, doc


def env_names(node: Any) -> Iterator[str]:
    """Every variable name set anywhere: env lists, environment maps, ConfigMap data."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from (item["name"] for item in value if isinstance(item, dict))
            elif key in ("environment", "data") and isinstance(value, dict):
                yield from (str(k) for k in value)
            yield from env_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_names(item)


def test_every_manifest_parses_and_k8s_objects_are_complete() -> None:
    kinds = []
    for path, doc in documents():
        if path.name.startswith("compose."):
            assert "services" in doc, path
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion/kind missing"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"
        kinds.append(doc["kind"])
    assert {"Deployment", "ConfigMap", "Service", "PersistentVolumeClaim"} <= set(kinds)


def test_kustomizations_list_existing_files() -> None:
    for kust in (ROOT / "k3s").rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kust.read_text())["resources"]:
            path = kust.parent / resource
            # a folder is another kustomization (k3s/monitoring lists deploy/prometheus)
            ok = (path / "kustomization.yaml").is_file() if path.is_dir() else path.is_file()
            assert ok, f"{kust}: {resource} does not exist"


@pytest.mark.parametrize("path", [ROOT / "compose.edge.yaml", ROOT / "compose.cloud.yaml"])
def test_compose_services_use_existing_cli_commands(path: Path) -> None:
    from typer.main import get_command

    from edgecloud.cli import app

    root = get_command(app)
    for name, service in yaml.safe_load(path.read_text())["services"].items():
        if service.get("image", "").startswith("edgecloud:"):
            group, command = service["command"][:2]
            assert command in root.commands[group].commands, f"{name}: edgecloud {group} {command}"  # type: ignore[attr-defined]


def test_every_edgecloud_variable_in_the_manifests_is_a_real_setting() -> None:
    known = known_env_names()
    used = {
        (path.relative_to(ROOT).as_posix(), name)
        for path, doc in documents()
        for name in env_names(doc)
        if name.startswith(("EDGECLOUD_", "OPENAI_"))
    }
    assert used, "no settings found: the walker is broken"
    unknown = sorted((p, n) for p, n in used if n not in known and n not in NOT_SETTINGS)
    assert not unknown, f"settings no code reads: {unknown}"
