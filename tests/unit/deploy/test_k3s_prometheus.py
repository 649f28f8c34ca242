"""The k3s Prometheus (k3s/monitoring): it runs deploy/prometheus/prometheus-k3s.yml and the
shipped rules/ (generated from those files, not copied), every workload serving /metrics is
annotated for its pod discovery, the tokens and the network policy let it in, and upstream
``promtool check config`` (Debian's lacks kubernetes_sd) accepts its config (issue 19)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from edgecloud.dev.prometheus import TOKEN_FILES

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
K3S = ROOT / "k3s"
# container args -> (the setting holding the port /metrics is served on, the host setting)
METRICS = {
    ("edge", "run"): ("EDGECLOUD_HTTP_PORT", "EDGECLOUD_HTTP_HOST"),
    ("bridge", "run"): ("EDGECLOUD_BRIDGE_HTTP_PORT", "EDGECLOUD_BRIDGE_HTTP_HOST"),
    ("cloud", "api"): ("EDGECLOUD_API_PORT", "EDGECLOUD_API_HOST"),
    ("cloud", "worker"): ("EDGECLOUD_WORKER_METRICS_PORT", "EDGECLOUD_WORKER_METRICS_HOST"),
}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _config_maps(folder: Path) -> dict[str, str]:
    return {
        k: str(v)
        for d in _docs(folder / "config.yaml")
        if d["metadata"]["name"].startswith("edgecloud-")
        for k, v in d["data"].items()
    }


def _workloads() -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(folder, Deployment, settings: ConfigMap data overlaid with the container's env values)."""
    found = []
    for folder in (K3S / "edge", K3S / "cloud"):
        for path in sorted(folder.glob("*.yaml")):
            for doc in _docs(path):
                if doc["kind"] != "Deployment":
                    continue
                container = doc["spec"]["template"]["spec"]["containers"][0]
                env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
                found.append((folder.name, doc, _config_maps(folder) | env))
    return found


def _k3s_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROM / "prometheus-k3s.yml").read_text())
    return data


def _kept_apps(job: dict[str, Any]) -> set[str]:
    return {
        r["regex"]
        for r in job.get("relabel_configs", [])
        if r.get("action") == "keep" and r["source_labels"] == ["__meta_kubernetes_pod_label_app"]
    }


def _prometheus_deployment() -> dict[str, Any]:
    [deploy] = [
        d for d in _docs(K3S / "monitoring" / "prometheus.yaml") if d["kind"] == "Deployment"
    ]
    return deploy


def test_every_workload_serving_metrics_is_annotated_for_its_job() -> None:
    jobs = {j["job_name"]: _kept_apps(j) for j in _k3s_config()["scrape_configs"]}
    edge_node = _config_maps(K3S / "edge")["EDGECLOUD_NODE_ID"]
    seen = set()
    for folder, deploy, settings in _workloads():
        template = deploy["spec"]["template"]
        container = template["spec"]["containers"][0]
        args = tuple(container.get("args", [])[:2])
        name = deploy["metadata"]["name"]
        if not container["image"].startswith("edgecloud:"):
            continue  # Mosquitto, Postgres
        assert args in METRICS, f"{name}: edgecloud {args}: where does it serve /metrics?"
        port_setting, host_setting = METRICS[args]
        notes = template["metadata"].get("annotations", {})
        assert notes.get("prometheus.io/scrape") == "true", name
        assert notes.get("prometheus.io/path") == "/metrics", name
        assert notes.get("prometheus.io/port") == settings[port_setting], name
        assert int(notes["prometheus.io/port"]) in {p["containerPort"] for p in container["ports"]}
        assert settings.get(host_setting) == "0.0.0.0", f"{name}: /metrics only on loopback"
        app = template["metadata"]["labels"]["app"]
        [job] = [j for j, apps in jobs.items() if app in apps]
        if folder == "edge":
            assert notes.get("edgecloud.io/node-id") == edge_node, name
        seen.add((job, name))
    assert seen == {
        ("edgecloud-edge", "edge-agent"),
        ("edgecloud-bridge", "sync-bridge"),
        ("edgecloud-api", "cloud-api"),
        ("edgecloud-worker", "cloud-worker"),
    }


def test_k3s_config_keeps_the_shipped_jobs_tokens_globals_and_rule_files() -> None:
    shipped = yaml.safe_load((PROM / "prometheus.yml").read_text())
    k3s = _k3s_config()
    assert k3s["global"] == shipped["global"]
    assert k3s["rule_files"] == shipped["rule_files"] == ["rules/*.yml"]

    def auth(config: dict[str, Any]) -> dict[str, Any]:
        return {j["job_name"]: j.get("authorization") for j in config["scrape_configs"]}

    assert auth(k3s) == auth(shipped)
    for job in k3s["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        [sd] = job["kubernetes_sd_configs"]
        assert sd["role"] == "pod"
        assert set(sd["namespaces"]["names"]) == {"edgecloud-edge", "edgecloud-cloud"}
        keep = job["relabel_configs"][0]
        assert keep == {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "regex": "true", "action": "keep"}  # fmt: skip
        targets = {r.get("target_label") for r in job["relabel_configs"]}
        assert {"__address__", "__metrics_path__", "node_id"} <= targets


def test_k3s_prometheus_loads_the_shipped_rule_files() -> None:
    kust = yaml.safe_load((PROM / "kustomization.yaml").read_text())
    [gen] = kust["configMapGenerator"]
    files = dict(f.split("=", 1) if "=" in f else (Path(f).name, f) for f in gen["files"])
    rules = sorted(p.relative_to(PROM).as_posix() for p in (PROM / "rules").glob("*.yml"))
    assert len(rules) >= 2
    assert sorted(v for v in files.values() if v.startswith("rules/")) == rules
    assert files["prometheus.yml"] == "prometheus-k3s.yml"
    for source in files.values():
        assert (PROM / source).is_file(), source
    monitoring = yaml.safe_load((K3S / "monitoring" / "kustomization.yaml").read_text())
    assert "../../deploy/prometheus" in monitoring["resources"]
    spec = _prometheus_deployment()["spec"]["template"]["spec"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "config"]
    sources = volume["projected"]["sources"]
    [cm] = [s["configMap"] for s in sources if "configMap" in s]
    assert cm["name"] == gen["name"]
    assert {i["key"]: i["path"] for i in cm["items"]} == {
        key: ("prometheus.yml" if key == "prometheus.yml" else f"rules/{key}") for key in files
    }
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in spec["containers"][0]["args"]
    [secret] = [s["secret"] for s in sources if "secret" in s]
    assert secret["name"] == "edgecloud-monitoring"
    assert sorted(i["path"] for i in secret["items"]) == sorted(
        f"tokens/{name}.token" for name in TOKEN_FILES
    )


def test_rbac_lets_the_service_account_discover_pods() -> None:
    docs = {d["kind"]: d for d in _docs(K3S / "monitoring" / "prometheus.yaml")}
    [rule] = docs["ClusterRole"]["rules"]
    assert set(rule["resources"]) == {"pods", "endpoints", "services"}
    assert set(rule["verbs"]) == {"get", "list", "watch"}
    binding = docs["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
    account = docs["ServiceAccount"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "edgecloud-monitoring"}
    ]
    assert _prometheus_deployment()["spec"]["template"]["spec"]["serviceAccountName"] == account


def test_edge_network_policy_lets_the_prometheus_pod_reach_each_annotated_port() -> None:
    labels = _prometheus_deployment()["spec"]["template"]["metadata"]["labels"]
    policies = _docs(K3S / "edge" / "networkpolicy.yaml")
    for _, deploy, _ in (w for w in _workloads() if w[0] == "edge"):
        template = deploy["spec"]["template"]
        port = template["metadata"].get("annotations", {}).get("prometheus.io/port")
        if port is None:
            continue
        app = template["metadata"]["labels"]["app"]
        allowed = [
            rule
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app") == app
            for rule in p["spec"].get("ingress", [])
            if int(port) in {x["port"] for x in rule.get("ports", [])}
            and any(
                "namespaceSelector" in src
                and src.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()
                for src in rule.get("from", [])
            )
        ]
        assert allowed, f"{app}: no policy lets Prometheus reach port {port}"


def test_k3s_alertmanager_runs_the_shipped_config_and_prometheus_finds_it() -> None:
    kust = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "kustomization.yaml").read_text())
    [gen] = kust["configMapGenerator"]
    assert gen["files"] == ["alertmanager.yml"]
    monitoring = yaml.safe_load((K3S / "monitoring" / "kustomization.yaml").read_text())
    assert {"alertmanager.yaml", "../../deploy/alertmanager"} <= set(monitoring["resources"])
    [deploy] = [
        d for d in _docs(K3S / "monitoring" / "alertmanager.yaml") if d["kind"] == "Deployment"
    ]
    template = deploy["spec"]["template"]
    [volume] = [v for v in template["spec"]["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == gen["name"]
    container = template["spec"]["containers"][0]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in container["args"]
    [am] = _k3s_config()["alerting"]["alertmanagers"]
    [sd] = am["kubernetes_sd_configs"]
    assert sd["namespaces"]["names"] == [monitoring["namespace"]]
    [keep] = am["relabel_configs"]
    app, port = keep["regex"].split(";")
    assert app == template["metadata"]["labels"]["app"]
    assert int(port) in {p["containerPort"] for p in container["ports"]}
    amtool = shutil.which("amtool")
    assert amtool, "amtool not found: make install installs Debian's prometheus-alertmanager"
    done = subprocess.run(
        [amtool, "check-config", str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _upstream_promtool() -> Path:
    default = Path.home() / ".cache" / "edgecloud" / "promtool"
    cache = Path(os.environ.get("EDGECLOUD_PROMTOOL_CACHE", default))
    found = cache / "2.42.0" / "promtool"
    assert found.is_file(), f"{found} missing: make install builds it (scripts/build-promtool.sh)"
    return found


def test_upstream_promtool_checks_the_k3s_config(tmp_path: Path) -> None:
    home = tmp_path / "prometheus"
    shutil.copytree(PROM, home)
    (home / "tokens").mkdir()
    for name in TOKEN_FILES:
        (home / "tokens" / f"{name}.token").write_text("")
    done = subprocess.run(
        [str(_upstream_promtool()), "check", "config", str(home / "prometheus-k3s.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 2 rule files found" in done.stdout
