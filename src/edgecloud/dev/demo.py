"""``edgecloud dev up --demo``: the guided run on top of a started stack.

After ``dev up`` has started everything, ``run_demo``:

1. trusts the development operator key in the cloud (``POST /api/v1/operator-keys``; the
   agents trust ``models/dev-keys/dev.pub`` through ``EDGECLOUD_OPERATOR_PUBLIC_KEYS`` and
   follow the cloud with their node tokens, both wired by ``dev/apps.py``);
2. starts the local OpenAI stand-in (``edgecloud.dev.openai_standin``) as an app process and
   restarts the cloud worker with ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` pointing at it
   (there is no real key here: escalations are answered by the stand-in, and the output says
   so);
3. publishes simulated telemetry (``edgecloud.sim``, injected faults) from devices spread
   over the nodes (each node owns the devices of its shard, ``EDGECLOUD_DEVICE_SHARD``, since
   the local nodes share one broker), printing progress;
4. pushes ``sensor-anomaly/1.0.0`` and rolls it out to every node, then pushes the retrained
   ``1.1.0`` and rolls it out in waves (50 %, 100 %) with shadow gates, following it to the
   end while the devices keep publishing;
5. closes the learning loop (``dev/demo_learning.py``): the fault mix shifts to stuck sensors,
   the demo posts ground truth (scoring only) and a few operator labels, the cloud retrains
   with the temporal trainer, evaluates the candidate against 1.1.0 on a held-out window,
   signs and registers it, and it rolls out in waves with shadow gates;
6. waits until the cloud holds every reading, then prints the summary: readings published /
   stored at the edge (each node's database) / stored in the cloud (REST API, read token),
   anomalies and escalations, the rollout outcome per node, and the dashboard URL.

It returns ``(exit_code, summary)``: 0 only when nothing was lost (edge and cloud both hold
exactly the published readings), the retrained candidate was accepted and all three rollouts
succeeded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from edgecloud.cli.client import ApiClient, ApiRefused, ApiUnreachable
from edgecloud.core.topics import device_shard
from edgecloud.dev import apps, process
from edgecloud.dev import demo_learning as learning
from edgecloud.dev import devices as dev_devices
from edgecloud.dev.control import StackConfig, status

Echo = Callable[[str], None]
MODEL = "sensor-anomaly"
FINAL = ("succeeded", "failed", "aborted", "rolled_back")
STANDIN = "openai_standin"
STANDIN_KEY = "standin-demo-key"


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 45.0  # device simulation, at least (it runs until the rollout ends)
    devices_per_node: int = 6
    rate_hz: float = 5.0  # readings per second per device
    # share of readings inside an injected fault: high, so that a short run shows some (faults
    # last 1-200 steps and start rarely; the generator's default is 0.02)
    anomaly_rate: float = 0.3
    waves: str = "50,100"
    drain_timeout_s: float = 90.0
    rollout_timeout_s: float = 240.0
    learning_phase_s: float = 20.0  # publishing with the stuck-heavy fault mix before retraining


@dataclass
class SimProgress:
    published: int = 0
    acked: int = 0
    anomalous: int = 0
    by_fault: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def bundles_dir() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "models" / "bundles" / MODEL
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("models/bundles/sensor-anomaly not found (run from the checkout)")


class Api:
    """The cloud REST API with the dev tokens (read / operate / admin), on ``cli/client.py``."""

    def __init__(self, base_url: str, tokens: dict[str, str]) -> None:
        self.base = base_url.rstrip("/")
        self.tokens = tokens
        self.client = ApiClient(self.base, tokens.get("read"))

    def call(self, method: str, path: str, scope: str = "read", **kw: Any) -> httpx.Response:
        return self.client.request(method, path, token=self.tokens[scope], **kw)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.call("GET", path, params=_given(params))

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        return self.client.pages(path, _given(params))


def _given(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def edge_counts(info: dict[str, Any], prefix: str) -> dict[str, int]:
    """Readings of this run's devices in each node's own database."""
    import psycopg

    counts = {}
    for node in info["nodes"]:
        try:
            with psycopg.connect(_pg(node["database_url"]), connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM readings WHERE device_id LIKE %s", (prefix + "-%",)
                ).fetchone()
            counts[node["node_id"]] = int(row[0]) if row else 0
        except psycopg.Error:
            counts[node["node_id"]] = -1  # table not there yet (agent migrating)
    return counts


def cloud_count(api: Api, prefix: str) -> tuple[int, dict[str, int]]:
    """Readings of this run's devices in the cloud (``GET /api/v1/devices``), total and per
    node."""
    total = 0
    per_node: dict[str, int] = {}
    for dev in api.pages("/api/v1/devices", limit=500):
        if dev["device_id"].startswith(prefix + "-"):
            total += int(dev["readings"])
            per_node[dev["node_id"]] = per_node.get(dev["node_id"], 0) + int(dev["readings"])
    return total, per_node


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def start_standin(config: StackConfig) -> str:
    """The OpenAI stand-in as an app of the state dir (``dev down`` stops it); its base URL."""
    meta = config.state_dir / "openai-standin.json"
    proc = apps.AppProcess(config.state_dir, STANDIN)
    pid = proc.pid()
    if pid is not None and meta.exists():
        return str(json.loads(meta.read_text())["base_url"])
    port = process.free_port()
    argv = [sys.executable, "-m", "edgecloud.dev.openai_standin", "--port", str(port)]
    argv += ["--api-key", STANDIN_KEY]
    # argv must name "edgecloud" for the pid file to count (it does: the module path)
    proc.start(apps.AppSpec(STANDIN, argv, {}))
    base_url = f"http://127.0.0.1:{port}/v1"
    meta.write_text(json.dumps({"base_url": base_url, "port": port}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            res = httpx.get(
                f"{base_url}/models", headers={"Authorization": f"Bearer {STANDIN_KEY}"}
            )
            if res.status_code == 200:
                return base_url
        time.sleep(0.3)
    raise RuntimeError(f"the OpenAI stand-in did not answer on {base_url}")


def worker_with_escalation(config: StackConfig, base_url: str) -> bool:
    """Restart the cloud worker with the stand-in as its OpenAI endpoint (if not already)."""
    proc = apps.AppProcess(config.state_dir, "cloud_worker")
    pid = proc.pid()
    if pid is not None and _environ(pid).get("OPENAI_BASE_URL") == base_url:
        return False
    spec = next(s for s in apps.app_specs(config.infra(), config.nodes) if s.name == "cloud_worker")
    env = {**spec.env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": STANDIN_KEY}
    proc.stop()
    proc.start(apps.AppSpec(spec.name, spec.argv, env))
    return True


def trust_dev_key(api: Api) -> str:
    key = apps.dev_public_key()
    if key is None:
        return "no development key found"
    res = api.call(
        "POST",
        "/api/v1/operator-keys",
        "admin",
        json={"public_key": key.read_text().strip(), "name": "dev (models/dev-keys)"},
    )
    if res.status_code < 300:
        return f"trusted {res.json().get('key_id', '')}"
    if res.status_code == 409:
        return "already trusted"
    return f"not registered ({res.status_code}: {res.text[:200]})"


def push(api: Api, version: str) -> str:
    """``edgecloud model push`` of a committed (already signed) bundle."""
    env = {
        **os.environ,
        "EDGECLOUD_CLOUD_API_URL": api.base,
        "EDGECLOUD_API_TOKEN": api.tokens["operate"],
    }
    argv = [*apps.cli(), "model", "push", str(bundles_dir() / version)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"model push {version} failed: {(done.stderr or done.stdout)[-500:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "pushed"


def start_rollout(api: Api, version: str, waves: list[int], gates: dict[str, float]) -> str:
    body = {"model": f"{MODEL}:{version}", "selector": {}, "waves": waves, "gates": gates}
    res = api.call("POST", "/api/v1/rollouts", "operate", json=body)
    if res.status_code >= 300:
        raise RuntimeError(f"rollout of {version} refused ({res.status_code}): {res.text[:300]}")
    return str(res.json()["id"])


def follow(
    api: Api, rollout_id: str, timeout: float, echo: Echo, tick: Callable[[], str]
) -> dict[str, Any]:
    """Poll a rollout until it ends, echoing each change of its node statuses."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ro: dict[str, Any] = api.get(f"/api/v1/rollouts/{rollout_id}")
        line = "  ".join(f"{n['node_id']}={n['status']}" for n in ro["nodes"])
        head = f"wave {ro.get('current_wave', 0) + 1}/{len(ro['waves'])}"
        text = f"  rollout {ro['state']}, {head}: {line}"
        if text != last:
            echo(f"{text}   [{tick()}]")
            last = text
        if ro["state"] in FINAL or time.monotonic() > deadline:
            return ro
        time.sleep(1.0)


def wait_nodes(api: Api, nodes: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiUnreachable, ApiRefused):
            seen = {n["node_id"] for n in api.pages("/api/v1/nodes")}
            if set(nodes) <= seen:
                return True
        time.sleep(1.0)
    return False


def active_version(api: Api, node_id: str) -> str | None:
    with contextlib.suppress(ApiUnreachable, ApiRefused):
        node = api.get(f"/api/v1/nodes/{node_id}")
        for m in node.get("active_models") or []:
            if m.get("name") == MODEL:
                return str(m.get("version"))
    return None


def agent_model(health_url: str | None) -> str | None:
    """The model an agent serves now, from its ``/healthz`` (heartbeats lag up to 10 s)."""
    if not health_url:
        return None
    with contextlib.suppress(httpx.HTTPError, ValueError):
        model = httpx.get(health_url, timeout=5.0).json().get("model") or {}
        if model.get("name"):
            return f"{model['name']}:{model.get('version')} ({model.get('state')})"
    return None


def simulate(
    info: dict[str, Any], prefix: str, devices: int, opts: DemoOptions, stop: threading.Event,
    truth: learning.Truth | None = None, accounts: dict[str, dict[str, Any]] | None = None,
) -> SimProgress:  # fmt: skip
    """Run the simulator in a thread; ``stop`` ends it (it also ends after 20 minutes).
    With ``accounts`` (the registered devices' credentials) each device publishes with its
    own; else (an external broker) through ``device_credentials``."""
    from edgecloud.adapters.mqtt import MqttConfig, make_publisher
    from edgecloud.core.settings import mqtt_client_options
    from edgecloud.sim.publisher import SimulationConfig, SimulationStats, run_simulation

    creds = info["device_credentials"] or {}
    config = MqttConfig.from_url(
        info["mqtt_url"], username=creds.get("username"), password=creds.get("password"),
        **mqtt_client_options(),
    )  # fmt: skip
    progress = SimProgress()
    cfg = SimulationConfig(
        devices=devices, rate_hz=opts.rate_hz, duration_s=1200.0,
        anomaly_rate=opts.anomaly_rate, seed=int(time.time()) % 10_000, device_prefix=prefix,
    )  # fmt: skip

    def tick(s: SimulationStats) -> None:
        progress.published, progress.acked, progress.anomalous = s.published, s.acked, s.anomalous
        progress.by_fault, progress.seconds = dict(s.by_fault), s.seconds

    def body() -> None:
        pub: Any = (
            dev_devices.DevicePublishers(info["mqtt_url"], accounts)
            if accounts
            else make_publisher(config, client_id=f"edgecloud-demo-{prefix}")
        )
        try:
            pub.start()
            stats = run_simulation(
                cfg, pub, on_tick=tick, should_stop=stop.is_set,
                on_step=truth.on_step if truth is not None else None,
            )  # fmt: skip
            tick(stats)
        except Exception as exc:  # reported in the summary, never a hung demo
            progress.error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                pub.stop()
            progress.done.set()

    threading.Thread(target=body, name="demo-sim", daemon=True).start()
    return progress


def run_demo(
    config: StackConfig, echo: Echo, options: DemoOptions | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the demo on the started stack; returns (exit code, summary)."""
    opts = options or DemoOptions()
    t_start = time.monotonic()
    since = datetime.now(UTC).isoformat()
    info = status(config)
    tokens = info.get("tokens")
    if not tokens:
        echo("demo: the stack has no API tokens (edgecloud token create failed); see dev status")
        return 1, {"ok": False, "error": "no tokens"}
    api = Api(info["cloud_api_url"], tokens)
    node_list = [n["node_id"] for n in info["nodes"]]
    n_nodes = len(node_list)
    prefix = "demo" + secrets.token_hex(2)
    devices = opts.devices_per_node * n_nodes
    owner = {
        f"{prefix}-{i:03d}": node_list[device_shard(f"{prefix}-{i:03d}", n_nodes) - 1]
        if n_nodes > 1
        else node_list[0]
        for i in range(1, devices + 1)
    }

    def elapsed() -> str:
        return f"{time.monotonic() - t_start:5.1f} s"

    echo(f"edgecloud demo: {n_nodes} edge node(s), {devices} simulated devices ({prefix}-NNN)")
    echo(f"  operator key: {trust_dev_key(api)} (models/dev-keys/dev.pub, development only)")
    base_url = start_standin(config)
    restarted = worker_with_escalation(config, base_url)
    echo(
        f"  escalation: local OpenAI stand-in at {base_url} (no real OpenAI key here; "
        f"answers are generated locally){'; cloud worker restarted to use it' if restarted else ''}"
    )
    if not wait_nodes(api, node_list, 60.0):
        echo("  not every node has sent a heartbeat to the cloud yet; rollouts may not find them")

    echo(f"  {push(api, '1.0.0')}")
    stop = threading.Event()
    truth = learning.Truth()
    accounts = None
    if config.infra().mqtt_managed:  # one account per device, through the registry (issue 16)
        infra = config.infra()
        accounts = dev_devices.register(
            infra, info["cloud_api_url"], tokens["operate"], owner, set()
        )
        dev_devices.wait_applied(infra, sorted(accounts))
        echo(f"  {len(accounts)} devices registered, applied by the nodes' agents ({elapsed()})")
    sim = simulate(info, prefix, devices, opts, stop, truth, accounts)
    per_node = {n: sum(1 for o in owner.values() if o == n) for n in node_list}
    echo(
        f"  simulating {devices} devices at {opts.rate_hz:g}/s each for at least "
        f"{opts.duration_s:g} s ("
        + ", ".join(f"{n}: {k} devices" for n, k in per_node.items())
        + ")"
    )

    def progress() -> str:
        return f"{elapsed()}, published {sim.published}"

    rollouts: dict[str, Any] = {}
    learned: dict[str, Any] = {"accepted": False, "error": "not reached"}
    try:
        # on a rerun with a kept stack the nodes serve 1.1.0 and hold 1.0.0 as their previous
        # model: a new rollout of it is installed like any other (shadow, then active)
        rid = start_rollout(api, "1.0.0", [100], {"shadow_readings": 20})
        echo(f"  rollout {rid}: {MODEL}:1.0.0 to all nodes")
        rollouts["1.0.0"] = follow(api, rid, opts.rollout_timeout_s, echo, progress)
        # let the devices run on 1.0.0 for a while before the retrained model arrives
        half = t_start + max(opts.duration_s * 0.4, 5.0)
        while time.monotonic() < half and not sim.done.is_set():
            time.sleep(min(5.0, max(0.1, half - time.monotonic())))
            echo(f"  {progress()}")
        echo(f"  {push(api, '1.1.0')}")
        waves = [int(w) for w in opts.waves.split(",")]
        # 1.1.0 is retrained with a higher threshold on purpose, so on the demo's fault-heavy
        # data (30 % of devices in a fault at a time) the two disagree on many readings: in a
        # CI run of 2026-12-02, 1.0.0 flagged 35 % of edge-1's readings during the shadow and
        # 1.1.0 none (agreement 0.54 to 0.77 per 26 readings, 0.62 over the gate's 52; the
        # stored readings replayed through both bundles gave the same). The default 0.9 gate,
        # and the 0.7 used before, then blocked it at random. The gate still runs, at 0.4.
        rid = start_rollout(api, "1.1.0", waves, {"shadow_readings": 50, "min_agreement": 0.4})
        echo(f"  rollout {rid}: {MODEL}:1.1.0 in waves {opts.waves} (shadow 50 readings/node)")
        rollouts["1.1.0"] = follow(api, rid, opts.rollout_timeout_s, echo, progress)

        def drained(t: float) -> bool:  # the cloud holds what was published before ``t``
            deadline = time.monotonic() + opts.drain_timeout_s
            want = len([r for r in truth.rows if r[0] < t])
            while time.monotonic() < deadline:
                with contextlib.suppress(ApiUnreachable, ApiRefused):
                    if cloud_count(api, prefix)[0] >= want:
                        return True
                time.sleep(0.5)
            return False

        learned = learning.run_loop(api, truth, prefix, opts.learning_phase_s, drained, echo)
        if learned.get("accepted"):
            version = str(learned["version"])
            # the temporal model moves the score of stuck readings on purpose (they are most of
            # the faults now): its mean |score change| in the shadow was 0.15-0.16 in the run of
            # 2026-12-03 and 0.31 in the fresh-clone CI run of 2026-12-04 (52 readings, after the
            # learning phase's stuck-fault shift), over the default 0.1 drift gate. Its quality
            # gate is the held-out evaluation before (F1 +0.88 in that run); the shadow gates
            # still run, at 0.6 drift and 0.4 agreement, and catch a broken candidate.
            gates = {"shadow_readings": 50, "min_agreement": 0.4, "max_score_drift": 0.6}
            rid = start_rollout(api, version, waves, gates)
            echo(f"  rollout {rid}: {MODEL}:{version} (retrained) in waves {opts.waves}, shadow")
            rollouts[version] = follow(api, rid, opts.rollout_timeout_s, echo, progress)
        end = t_start + opts.duration_s
        while time.monotonic() < end and not sim.done.is_set():
            time.sleep(min(5.0, max(0.1, end - time.monotonic())))
            echo(f"  {progress()}")
    finally:
        stop.set()
        sim.done.wait(60.0)
    echo(f"  simulation done: {sim.published} readings published, {sim.acked} acknowledged")

    # drain: wait until edge and cloud hold what was published
    deadline = time.monotonic() + opts.drain_timeout_s
    edge: dict[str, int] = {}
    cloud = 0
    cloud_nodes: dict[str, int] = {}
    while True:
        edge = edge_counts(info, prefix)
        with contextlib.suppress(ApiUnreachable, ApiRefused):
            cloud, cloud_nodes = cloud_count(api, prefix)
        if (sum(edge.values()) >= sim.published and cloud >= sim.published) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1.0)
    echo(f"  pipeline drained at {elapsed()}")

    anomalies, escalations = _anomalies(api, prefix, since)
    summary = _summary(
        info, prefix, sim, edge, cloud, cloud_nodes, anomalies, escalations, rollouts, owner,
        base_url, api,
    )  # fmt: skip
    summary["learning"] = learned
    summary["ok"] = bool(summary["ok"] and learned.get("accepted") and len(rollouts) == 3)
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    _print(summary, echo)
    return (0 if summary["ok"] else 1), summary


def _anomalies(api: Api, prefix: str, since: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """This run's anomalies; waits (up to 30 s) for pending escalations to be answered."""
    deadline = time.monotonic() + 30.0
    while True:
        items = [
            a
            for a in api.pages("/api/v1/anomalies", since=since, limit=1000)
            if a["device_id"].startswith(prefix + "-")
        ]
        counts: dict[str, int] = {}
        for a in items:
            if a.get("escalate"):
                st = (a.get("escalation") or {}).get("status", "not yet queued")
                counts[st] = counts.get(st, 0) + 1
        pending = sum(v for k, v in counts.items() if k in ("pending", "queued", "not yet queued"))
        if pending == 0 or time.monotonic() > deadline:
            return items, counts
        time.sleep(1.0)


def _node_outcome(ro: dict[str, Any]) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in ro.get("nodes", [])}


def _summary(
    info: dict[str, Any],
    prefix: str,
    sim: SimProgress,
    edge: dict[str, int],
    cloud: int,
    cloud_nodes: dict[str, int],
    anomalies: list[dict[str, Any]],
    escalations: dict[str, int],
    rollouts: dict[str, Any],
    owner: dict[str, str],
    base_url: str,
    api: Api,
) -> dict[str, Any]:
    edge_total = sum(v for v in edge.values() if v > 0)
    rollout_ok = (
        all(r.get("state") == "succeeded" for r in rollouts.values()) and len(rollouts) >= 2
    )
    final_versions = {n["node_id"]: agent_model(n.get("health_url")) for n in info["nodes"]}
    token = (info.get("tokens") or {}).get("read", "")
    lost_edge = sim.published - edge_total
    lost_cloud = sim.published - cloud
    ok = (
        sim.error is None
        and sim.published > 0
        and sim.acked == sim.published
        and lost_edge == 0
        and lost_cloud == 0
        and rollout_ok
    )
    return {
        "ok": ok,
        "device_prefix": prefix,
        "devices": len(owner),
        "readings": {
            "published": sim.published,
            "acknowledged_by_broker": sim.acked,
            "inside_injected_faults": sim.anomalous,
            "faults": sim.by_fault,
            "stored_at_edge": edge_total,
            "stored_at_edge_per_node": edge,
            "stored_in_cloud": cloud,
            "stored_in_cloud_per_node": cloud_nodes,
            "lost_edge": lost_edge,
            "lost_cloud": lost_cloud,
        },
        "simulation_error": sim.error,
        "anomalies": {
            "flagged": len(anomalies),
            "escalated": sum(1 for a in anomalies if a.get("escalate")),
            "escalations_by_status": escalations,
            "by_model_version": _count(a.get("model_version") or "none" for a in anomalies),
            "escalation_endpoint": f"{base_url} (local OpenAI stand-in, no real key)",
            "example": _example(anomalies),
        },
        "rollouts": {
            v: {
                "id": r.get("id"),
                "state": r.get("state"),
                "detail": r.get("detail"),
                "nodes": _node_outcome(r),
            }
            for v, r in rollouts.items()
        },
        "active_versions": final_versions,
        "dashboard_url": f"{info['cloud_api_url']}/#token={token}",
        "cloud_api_url": info["cloud_api_url"],
    }


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _example(anomalies: list[dict[str, Any]]) -> dict[str, Any] | None:
    for a in anomalies:
        esc = a.get("escalation") or {}
        if esc.get("status") == "done" or esc.get("explanation"):
            return {
                "device_id": a["device_id"],
                "seq": a["seq"],
                "score": a.get("score"),
                "severity": esc.get("severity"),
                "explanation": esc.get("explanation"),
            }
    return None


def _print(s: dict[str, Any], echo: Echo) -> None:
    r = s["readings"]
    a = s["anomalies"]
    echo("")
    echo("edgecloud demo summary")
    echo(f"  devices            {s['devices']} ({s['device_prefix']}-NNN)")
    echo(
        f"  readings published {r['published']} (broker acknowledged {r['acknowledged_by_broker']})"
    )
    per_edge = ", ".join(f"{k} {v}" for k, v in r["stored_at_edge_per_node"].items())
    echo(f"  stored at the edge {r['stored_at_edge']} ({per_edge})")
    per_cloud = ", ".join(f"{k} {v}" for k, v in sorted(r["stored_in_cloud_per_node"].items()))
    echo(f"  stored in the cloud {r['stored_in_cloud']} ({per_cloud}; GET /api/v1/devices)")
    echo(f"  lost               edge {r['lost_edge']}, cloud {r['lost_cloud']}")
    faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())) or "none"
    echo(f"  injected faults    {r['inside_injected_faults']} readings ({faults})")
    by_version = ", ".join(f"{k}: {v}" for k, v in sorted(a["by_model_version"].items()))
    echo(f"  anomalies flagged  {a['flagged']} ({by_version or 'none'})")
    esc = ", ".join(f"{k} {v}" for k, v in sorted(a["escalations_by_status"].items()))
    echo(f"  escalated          {a['escalated']} ({esc or 'none'})")
    echo(f"    via {a['escalation_endpoint']}")
    if a["example"]:
        ex = a["example"]
        echo(
            f"    e.g. {ex['device_id']} seq {ex['seq']} score {ex['score']:.3f}: "
            f"[{ex['severity']}] {str(ex['explanation'])[:100]}"
        )
    for version, ro in s["rollouts"].items():
        nodes = ", ".join(f"{k} {v}" for k, v in ro["nodes"].items()) or "(no nodes)"
        echo(f"  rollout {MODEL}:{version} {ro['state']}: {nodes}")
        if ro.get("detail"):
            echo(f"    {ro['detail']}")
    _print_learning(s.get("learning") or {}, echo)
    active = ", ".join(f"{k} {v}" for k, v in s["active_versions"].items())
    echo(f"  active now         {active}")
    echo(f"  dashboard          {s['dashboard_url']}")
    echo(f"  result             {'OK: nothing lost, rollouts succeeded' if s['ok'] else 'FAILED'}")
    echo("  the stack stays up: `edgecloud dev status`, `edgecloud dev down` to stop it")


def _print_learning(lr: dict[str, Any], echo: Echo) -> None:
    if "active" not in lr:
        echo(f"  learning loop      not completed: {lr.get('error')}")
        return
    echo(
        f"  learning loop      retrained {MODEL}:{lr['version']} from {lr['parent_version']} on "
        f"{lr['training']['fit']} readings ({lr['ground_truth_labels']} ground-truth labels for "
        f"scoring, {lr['operator_labels']} operator labels), "
        + ("accepted" if lr["accepted"] else "REFUSED")
        + f" ({lr['metric']} {lr['gain']:+.3f}, needed {lr['min_gain']})"
    )
    held = lr["held_out"]
    echo(
        f"    held-out window  from {lr['window']['held_out_from'][11:19]} UTC: "
        f"{held['anomalous']} anomalous, {held['normal']} normal readings"
    )
    for role in ("active", "candidate"):
        f = lr[role]
        echo(
            f"    {role:<9} {f['version']:<6} recall {f['recall']:.3f}  "
            f"false-positive rate {f['false_positive_rate']:.3f}  precision {f['precision']:.3f}"
            f"  F1 {f['f1']:.3f}  stuck recall {f['stuck_recall']}"
        )
