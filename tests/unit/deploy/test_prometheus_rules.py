"""The shipped Prometheus config and rules: ``promtool check config`` accepts them, the
``promtool test rules`` unit tests of deploy/prometheus/tests pass, every alert has a test and
a section in docs/observability.md."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgecloud.dev.prometheus import TOKEN_FILES

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: make install installs Debian's prometheus package"
    return found


def _rules(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((PROM / "rules" / name).read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_promtool_checks_the_shipped_config(tmp_path: Path) -> None:
    shutil.copytree(PROM, tmp_path / "prometheus")
    tokens = tmp_path / "prometheus" / "tokens"
    tokens.mkdir()
    for name in TOKEN_FILES:
        (tokens / f"{name}.token").write_text("")
    done = subprocess.run(
        [_promtool(), "check", "config", str(tmp_path / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", str(PROM / "tests" / "alerts_test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test_and_a_doc_section() -> None:
    alerts = [r["alert"] for r in _rules("alerts.yml")]
    assert len(alerts) >= 12
    tests = yaml.safe_load((PROM / "tests" / "alerts_test.yml").read_text())["tests"]
    tested = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # a test where it fires, not only where it stays quiet
    }
    assert set(alerts) - tested == set()
    docs = (ROOT / "docs" / "observability.md").read_text()
    assert [a for a in alerts if f"### {a}" not in docs] == []


@pytest.mark.parametrize("name", ["alerts.yml", "recording.yml"])
def test_rules_name_only_edgecloud_metrics(name: str) -> None:
    for rule in _rules(name):
        assert rule.get("alert", rule.get("record", "")).startswith(("Edgecloud", "edgecloud:"))
