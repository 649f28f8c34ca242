"""The compose files stay valid for `docker compose` v2 as well as for docker-compose 1.29 (the
one run here, by tests/e2e/test_compose.py). v2 cannot run here, so this checks the keys the
files use against the Compose Specification's JSON schema
(https://github.com/compose-spec/compose-spec/blob/main/schema/compose-spec.json: the top-level
properties, `service` properties, `depends_on` conditions, `healthcheck` fields), and the one
key 1.29 refuses (`name:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = [ROOT / "compose.edge.yaml", ROOT / "compose.cloud.yaml"]
# compose-spec.json "properties" of the root object (besides x-* extensions)
TOP = {"version", "name", "include", "services", "models", "networks", "volumes", "secrets",
       "configs"}  # fmt: skip
# the subset of definitions.service.properties these files use
SERVICE = {"image", "command", "entrypoint", "environment", "ports", "volumes", "secrets",
           "healthcheck", "restart", "depends_on", "extra_hosts", "network_mode", "working_dir",
           "profiles"}  # fmt: skip
HEALTHCHECK = {"disable", "interval", "retries", "test", "timeout", "start_period",
               "start_interval"}  # fmt: skip
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_keys_are_compose_spec_keys(path: Path) -> None:
    doc = load(path)
    top = {k for k in doc if not k.startswith("x-")}
    assert top <= TOP, top - TOP
    assert "name" not in doc, "docker-compose 1.29 refuses a top-level name: (use -p)"
    for name, service in doc["services"].items():
        extra = set(service) - SERVICE
        assert not extra, f"{name}: {extra} (not checked against the spec yet)"
        assert service.get("restart", "no") in RESTART, name
        for key, value in service.get("healthcheck", {}).items():
            assert key in HEALTHCHECK, f"{name}: healthcheck.{key}"
            if key == "test":
                assert value[0] in ("CMD", "CMD-SHELL", "NONE"), name
        depends = service.get("depends_on", [])
        if isinstance(depends, dict):
            for target, cond in depends.items():
                assert target in doc["services"], f"{name} depends on unknown {target}"
                assert set(cond) == {"condition"} and cond["condition"] in CONDITIONS
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in doc["secrets"], f"{name}: undeclared secret {source}"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in doc["services"]
    declared = set(doc.get("volumes", {}))
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name}: undeclared named volume {source}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_long_running_service_has_a_healthcheck_and_restart_policy(path: Path) -> None:
    for name, service in load(path)["services"].items():
        if service.get("profiles"):  # monitoring: optional, upstream images, not built here
            continue
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, f"{name}: no healthcheck"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_secret_value_in_the_file(path: Path) -> None:
    """Passwords come from the env file or compose secrets that scripts/compose.sh generates:
    every password-like variable is an interpolation, never a literal."""
    for name, service in load(path)["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(w in key for w in ("PASSWORD", "TOKEN", "API_KEY", "DATABASE_URL")):
                ok = "${" in str(value) or str(value).startswith("/run/secrets/")
                assert ok, f"{name}: {key} is a literal"
