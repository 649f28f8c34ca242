"""k3s/edge: ingress denied by default, each port open only to its clients; the agent's HTTP
server, bound off loopback there, has its token (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
EDGE = ROOT / "k3s" / "edge"


def _policies() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((EDGE / "networkpolicy.yaml").read_text())
    return {d["metadata"]["name"]: d["spec"] for d in docs}


def test_default_deny_and_one_policy_per_port() -> None:
    p = _policies()
    assert p["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    ports = {
        name: [port["port"] for rule in spec["ingress"] for port in rule["ports"]]
        for name, spec in p.items()
        if "ingress" in spec
    }
    assert ports == {"mosquitto-from-devices": [1883], "postgres-from-agent": [5432],
                     "agent-http-from-scrapers": [8410],
                     "bridge-metrics-from-scrapers": [8460]}  # fmt: skip
    [pg] = p["postgres-from-agent"]["ingress"]
    assert pg["from"] == [{"podSelector": {"matchLabels": {"app": "edge-agent"}}}]
    for name in ("agent-http-from-scrapers", "bridge-metrics-from-scrapers"):
        sources = p[name]["ingress"][0]["from"]
        assert {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"edgecloud.io/scrape": "true"}},
        } in sources
    kust = yaml.safe_load((EDGE / "kustomization.yaml").read_text())
    assert "networkpolicy.yaml" in kust["resources"]


def test_agent_off_loopback_takes_its_token_from_the_secret() -> None:
    deploy = next(yaml.safe_load_all((EDGE / "agent.yaml").read_text()))
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["EDGECLOUD_HTTP_HOST"]["value"] == "0.0.0.0"
    assert env["EDGECLOUD_HTTP_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "edgecloud-edge", "key": "agent-http-token"}  # fmt: skip
