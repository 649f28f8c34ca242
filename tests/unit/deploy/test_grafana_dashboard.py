"""deploy/grafana/edgecloud.json (not rendered here: Grafana is not installed) queries only
metrics that exist: names some component's Prometheus registry exports, or recording rules of
deploy/prometheus/rules/recording.yml. The exported names are collected from the real
registries (agent, bridge, worker, API with its fleet collector on a migrated SQLite database),
not from a hand list."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edgecloud.cloud.api.middleware import ApiMetrics
from edgecloud.cloud.api.routes.metrics import FleetCollector
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.escalation.state import write_state
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.worker.metrics import WorkerMetrics
from edgecloud.edge.agent import Agent
from edgecloud.edge.live_config import LiveConfig
from edgecloud.edge.metrics import AgentMetrics, Counters
from edgecloud.sync.metrics import BridgeMetrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "edgecloud.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}  # fmt: skip
# Prometheus's own series (scrape health), not ours
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def _sample_names(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def exported_names(tmp_path: Path) -> set[str]:
    stub = SimpleNamespace(  # what Agent._gauges reads of a running agent
        outbox=SimpleNamespace(pending_events=0),
        subscriber=SimpleNamespace(pending=lambda: 0),
        mqtt_connected=True,
        holder=SimpleNamespace(backend=None),
        uptime_s=1.0,
        config_watch=object(),  # a live configuration store is watched: its gauges show too
    )
    counters = Counters()
    stub.live = LiveConfig(counters, batch_size=32, batch_window_ms=5.0)
    counters.dead("bad_json")  # the by-reason family shows once it has a reason
    agent = AgentMetrics(counters, lambda: Agent._gauges(stub))  # type: ignore[arg-type]
    worker = WorkerMetrics()
    worker.events.labels("reading", "new")  # labelled families show once they have a child
    registries = [agent.registry, BridgeMetrics().registry, worker.registry]
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    migrate(url)
    engine = make_engine(url)
    write_state(engine, {"state": "enabled", "tokens_used": 1, "token_budget": 10})
    api = CollectorRegistry()
    ApiMetrics(api).observe("/x", "GET", 200, 0.01)
    api.register(FleetCollector(engine))
    registries.append(api)
    names: set[str] = set()
    for registry in registries:
        names |= _sample_names(registry)
    engine.dispose()
    return names


def recorded_names() -> set[str]:
    data = yaml.safe_load((ROOT / "deploy/prometheus/rules/recording.yml").read_text())
    return {r["record"] for g in data["groups"] for r in g["rules"]}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        after = text[match.end() :].lstrip()
        if after.startswith("(") or name.lower() in PROMQL_WORDS:
            continue
        found.add(name)
    return found


def panel_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


def test_metric_names_of_promql() -> None:
    assert metric_names('sum by (le) (rate(edgecloud_x_bucket{a="b"}[5m])) / y:z') == {
        "edgecloud_x_bucket",
        "y:z",
    }
    assert metric_names('time() - foo or on() bar{hop="edge"} > 0.5') == {"foo", "bar"}


def test_every_panel_queries_an_exported_metric(tmp_path: Path) -> None:
    known = exported_names(tmp_path) | recorded_names() | BUILTIN
    assert "edgecloud_bridge_spool_depth" in known and "edgecloud_node_hop" in known
    exprs = panel_exprs()
    assert len(exprs) >= 20
    unknown = {(title, name) for title, e in exprs for name in metric_names(e) - known}
    assert unknown == set()


def test_recording_rules_read_only_exported_metrics(tmp_path: Path) -> None:
    known = exported_names(tmp_path) | BUILTIN
    data = yaml.safe_load((ROOT / "deploy/prometheus/rules/recording.yml").read_text())
    unknown = {
        (r["record"], name)
        for g in data["groups"]
        for r in g["rules"]
        for name in metric_names(r["expr"]) - known
    }
    assert unknown == set()


@pytest.mark.parametrize("section", ["fleet", "throughput", "per-hop", "latency", "rollouts"])
def test_dashboard_covers(section: str) -> None:
    titles = " ".join(t.lower() for t, _ in panel_exprs())
    assert section in titles
