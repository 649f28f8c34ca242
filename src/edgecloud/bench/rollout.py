"""``bench rollout``: one model rolled out to N simulated nodes plus one real edge agent.

Runs the real cloud API process (``edgecloud cloud api``) on a fresh Postgres database.
Simulated nodes are asyncio tasks that behave like the model agent on the wire: long-poll
``/desired`` with ETag, download the artifact, check its sha256, post ``model_status``
(downloading, verified, loaded, shadow with perfect agreement, active). One real agent
(``edgecloud edge run``, live readings over MQTT) takes part, so the swap pause is measured on
real inference: ``swap_ms`` is how long the swap held the model (what a reading could wait),
``swap_wait_ms`` the whole swap call (it waits for the batch in flight).

Figures: time from ``POST /rollouts`` to every node active (``seconds``), per-node time from
its wave's start to active (p50/p99), the cloud API's CPU seconds and peak RSS over that time
(``/proc``). The limit (``limit_rate_per_s``) is the same nodes downloading the same artifact
at once, with no waves or gates: the raw cost of serving it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlmodel import Session

from edgecloud.bench.common import BenchResult, cloud_env, percentile
from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cloud import auth
from edgecloud.cloud.db import Node, make_engine
from edgecloud.core.archive import pack_folder
from edgecloud.core.signing import generate_key, public_key_b64
from edgecloud.dev.stack import Infra
from edgecloud.testing.edge_process import AgentProcess, cli, free_port

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_rss = max(self.peak_rss, proc_rss_mb(self.pid))
            self.stop.wait(0.1)


async def sim_node(
    api: str, node: str, token: str, active_at: dict[str, float], done: asyncio.Event
) -> None:
    """What a model agent does on the wire, without a model to run."""
    etag: str | None = None
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        while not done.is_set():
            try:
                res = await c.get(
                    f"/api/v1/nodes/{node}/desired",
                    params={"wait": 20},
                    headers={"If-None-Match": etag} if etag else {},
                )
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if res.status_code != 200:
                continue
            etag = res.headers.get("etag")
            model = res.json()["model"]
            if model is None or model.get("rollout_id") is None:
                continue
            for phase in ("downloading", "verified", "loaded", "shadow", "active"):
                if phase == "verified":
                    art = await c.get(model["artifact_url"])
                    assert hashlib.sha256(art.content).hexdigest() == model["artifact_sha256"]
                metrics = (
                    {
                        "agreement": 1.0,
                        "score_drift": 0.0,
                        "error_rate": 0.0,
                        "latency_p99_ms": 1.0,
                        "readings": 50.0,
                    }
                    if phase == "shadow"
                    else {}
                )
                ev = {
                    "schema": "edgecloud.event/v1",
                    "event_id": str(uuid.uuid4()),
                    "type": "model_status",
                    "node_id": node,
                    "ts": datetime.now(UTC).isoformat(),
                    "data": {
                        "rollout_id": model["rollout_id"],
                        "model": model["name"],
                        "version": model["version"],
                        "phase": phase,
                        "metrics": metrics,
                    },
                }
                await c.post(f"/api/v1/nodes/{node}/model-status", json=ev)
            active_at[node] = time.monotonic()


async def raw_downloads(api: str, token: str, url: str, n: int) -> float:
    """n concurrent downloads of the artifact: nodes per second."""
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        t0 = time.monotonic()
        await asyncio.gather(*(c.get(url) for _ in range(n)))
        return n / (time.monotonic() - t0)


def _traffic(infra: Infra, stop: threading.Event, devices: list[str]) -> None:
    from edgecloud.adapters.mqtt import MqttConfig, make_publisher
    from edgecloud.core.settings import mqtt_client_options

    user, pw = infra.mqtt_account("admin")
    config = MqttConfig(host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw,
                        **mqtt_client_options())  # fmt: skip
    pub = make_publisher(config)
    pub.start()
    seq = int(time.time() * 1000)
    while not stop.is_set():
        seq += 1
        for d in devices:
            values = {"temperature": 60.0 + seq % 30, "vibration_rms": 0.4, "pressure": 3.1}
            pub.publish(
                f"devices/{d}/telemetry",
                json.dumps({"device_id": d, "seq": seq, "ts": time.time(), "values": values}),
            )
        stop.wait(0.01)
    pub.stop()


def run(infra: Infra, nodes: int = 50, waves: tuple[int, ...] = (10, 50, 100)) -> BenchResult:
    tag = uuid.uuid4().hex[:6]
    work = Path(f"/tmp/edgecloud-bench-rollout-{tag}")
    db = infra.create_database(f"bench_rollout_{tag}")
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = cloud_env(db, work / "registry", 0.2)
    work.mkdir(parents=True)
    log = (work / "cloud.log").open("ab")
    cloud = subprocess.Popen(
        [*cli(), "cloud", "api", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    agent: AgentProcess | None = None
    stop_traffic = threading.Event()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(api + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or cloud.poll() is not None:
                raise RuntimeError(
                    "cloud API did not start: " + (work / "cloud.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        engine = make_engine(db)
        names = [f"sim-{tag}-{i:03d}" for i in range(nodes)]
        real = f"real-{tag}"
        with Session(engine) as s:
            op, _ = auth.create_token(s, "operate", "bench")
            admin, _ = auth.create_token(s, "admin", "bench")
            tokens = {}
            for n in [*names, real]:
                s.add(Node(node_id=n, labels={"bench": tag}, last_heartbeat=datetime.now(UTC)))
                s.commit()
                tokens[n], _ = auth.create_token(s, "node", n, n)
        engine.dispose()
        h = {"Authorization": f"Bearer {op}"}
        key = generate_key()
        httpx.post(
            api + "/api/v1/operator-keys",
            json={"public_key": public_key_b64(key)},
            headers={"Authorization": f"Bearer {admin}"},
        ).raise_for_status()
        v1 = linear_bundle(work / "v1", "1.0.0", key)
        v2 = linear_bundle(work / "v2", "1.1.0", key, weights=(0.05, 2.02, 0.1))
        for b in (v1, v2):
            httpx.post(
                api + "/api/v1/models", files={"bundle": ("b.tgz", pack_folder(b))}, headers=h
            ).raise_for_status()
        user, pw = infra.mqtt_account("edge-agent")
        agent = AgentProcess(
            node_id=real,
            database_url=infra.create_database(f"bench_rollout_{tag}_edge"),
            mqtt_url=infra.mqtt_url,
            mqtt_username=user,
            mqtt_password=pw,
            log_path=work / "agent.log",
            model=str(v1),
            extra_env={
                "EDGECLOUD_CLOUD_API_URL": api,
                "EDGECLOUD_NODE_TOKEN": tokens[real],
                "EDGECLOUD_OPERATOR_PUBLIC_KEYS": public_key_b64(key),
                "EDGECLOUD_MODEL_STORE_DIR": str(work / "edge"),
                "EDGECLOUD_MODEL_STATUS_VIA": "http",
                "EDGECLOUD_LOG_LEVEL": "WARNING",
                "EDGECLOUD_BATCH_WINDOW_MS": "5",
            },
        ).start()
        traffic = threading.Thread(
            target=_traffic,
            args=(infra, stop_traffic, [f"{tag}-d{i}" for i in range(8)]),
            daemon=True,
        )
        traffic.start()
        return asyncio.run(_rollout(api, op, tokens, names, real, waves, cloud.pid))
    finally:
        stop_traffic.set()
        if agent is not None:
            agent.stop()
        cloud.terminate()
        cloud.wait(20)
        log.close()
        for name in (f"bench_rollout_{tag}", f"bench_rollout_{tag}_edge"):
            infra.drop_database(name)


async def _rollout(
    api: str,
    op: str,
    tokens: dict[str, str],
    names: list[str],
    real: str,
    waves: tuple[int, ...],
    cloud_pid: int,
) -> BenchResult:
    done = asyncio.Event()
    active_at: dict[str, float] = {}
    sims = [asyncio.create_task(sim_node(api, n, tokens[n], active_at, done)) for n in names]
    await asyncio.sleep(1.0)  # every simulated node is long-polling
    h = {"Authorization": f"Bearer {op}"}
    sampler = Sampler(cloud_pid)
    sampler.start()
    cpu0 = proc_cpu_s(cloud_pid)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=api, headers=h, timeout=30) as c:
        body = {
            "model": "press-linear:1.1.0",
            "selector": {"bench": names[0].split("-")[1]},
            "waves": list(waves),
            "gates": {"shadow_readings": 50, "min_agreement": 0.9},
        }
        res = await c.post("/api/v1/rollouts", json=body)
        res.raise_for_status()
        rid = res.json()["id"]
        while True:
            ro = (await c.get(f"/api/v1/rollouts/{rid}")).json()
            if ro["state"] in ("succeeded", "failed", "aborted"):
                break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - t0
        cpu = proc_cpu_s(cloud_pid) - cpu0
        sampler.stop.set()
        done.set()
        for t in sims:
            t.cancel()
        limit = await raw_downloads(
            api, op, "/api/v1/models/press-linear/1.1.0/artifact", len(names) + 1
        )
    real_node = next(n for n in ro["nodes"] if n["node_id"] == real)
    per_node = [(active_at[n] - t0) * 1000 for n in names if n in active_at]
    total = len(ro["nodes"])
    active = sum(1 for n in ro["nodes"] if n["status"] == "active")
    rate = total / seconds
    return BenchResult(
        name="rollout",
        messages=total,
        seconds=round(seconds, 3),
        rate_per_s=round(rate, 2),
        p50_ms=round(percentile(per_node, 50), 1),
        p99_ms=round(percentile(per_node, 99), 1),
        lost=total - active,
        duplicates=0,
        limit_rate_per_s=round(limit, 2),
        ratio_to_limit=round(rate / limit, 4),
        extra={
            "state": ro["state"],
            "waves": list(waves),
            "simulated_nodes": len(names),
            "real_agents": 1,
            "cloud_cpu_s": round(cpu, 3),
            "cloud_cpu_pct_of_one_core": round(100 * cpu / seconds, 1),
            "cloud_rss_mb_peak": round(sampler.peak_rss, 1),
            "real_agent_swap_ms": real_node["metrics"].get("swap_ms"),
            "real_agent_swap_wait_ms": real_node["metrics"].get("swap_wait_ms"),
            "real_agent_shadow": {
                k: real_node["metrics"].get(k)
                for k in ("readings", "agreement", "score_drift", "latency_p99_ms")
            },
            "limit": "the same nodes downloading the artifact at once, no waves or gates",
        },
    )
