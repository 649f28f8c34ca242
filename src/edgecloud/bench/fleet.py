"""``edgecloud bench fleet --nodes 1000,3000,10000``: one cloud API process and one worker
against thousands of simulated edge nodes.

Per size, on a fresh migrated database and fresh Kafka topics: the real ``edgecloud cloud api``
and ``edgecloud cloud worker`` processes; N simulated nodes in one asyncio loop of this process
(no process per node), each long-polling ``GET /api/v1/nodes/{id}/desired?wait=W`` with its
ETag and its own node token over one HTTP connection of its own; a thread producing every
node's heartbeat to the heartbeats topic every ``heartbeat_s`` (the Kafka path, spread evenly);
after warm-up, a rollout in waves to all of them. A node that sees the rollout downloads the
artifact, checks its sha256 and reports ``downloading .. active`` on the model-status topic.

Figures per size:
- ``desired_poll_*``: latency of desired-state answers that are not held (each node's first
  poll, and a prober asking random nodes without ``wait`` at ``probe_rate``/s while the N
  long-polls are held): what a node or dashboard waits for an answer;
- ``longpoll_overshoot_*``: how late a held poll is answered after its ``wait``;
- ``heartbeat_lag_*``: the worker's write time minus the heartbeat's ``ts`` (table heartbeats);
- ``rollout_s``: ``POST /rollouts`` to every node active; API and worker CPU (% of one core
  over the measured window) and peak RSS; ``pg_size_mb`` of the database afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from edgecloud.adapters.kafka import KafkaProducer, ensure_topics, producer_config
from edgecloud.bench.common import BenchResult, cloud_env, percentile
from edgecloud.bench.rollout import Sampler, proc_cpu_s
from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.cloud import auth
from edgecloud.cloud.db import ApiToken, Node, make_engine
from edgecloud.cloud.settings import DEFAULT_GROUP_ID
from edgecloud.core.archive import pack_folder
from edgecloud.core.kafka import KafkaConnection
from edgecloud.core.signing import generate_key, public_key_b64
from edgecloud.core.topics import kafka_dead_letter_topic, kafka_topic
from edgecloud.dev import process
from edgecloud.dev.stack import Infra
from edgecloud.testing.edge_process import cli

PHASES = ("downloading", "verified", "loaded", "shadow", "active")
SHADOW = {"agreement": 1.0, "score_drift": 0.0, "error_rate": 0.0, "latency_p99_ms": 1.0}


@dataclass
class Options:
    wait_s: float = 20.0
    heartbeat_s: float = 10.0
    probe_rate: float = 20.0
    settle_s: float = 15.0
    waves: tuple[int, ...] = (10, 50, 100)
    rollout_timeout_s: float = 900.0


@dataclass
class Tally:
    first_poll_ms: list[float] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    overshoot_ms: list[float] = field(default_factory=list)
    active_at: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def envelope(kind: str, node: str, data: dict[str, Any], ts: datetime | None = None) -> bytes:
    ev = {
        "schema": "edgecloud.event/v1",
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "node_id": node,
        "ts": (ts or datetime.now(UTC)).isoformat(),
        "data": data,
    }
    return json.dumps(ev, separators=(",", ":")).encode()


class Events:
    """One producer for every simulated node's heartbeats and model status (thread-safe)."""

    def __init__(self, conn: KafkaConnection, prefix: str) -> None:
        self.failed = 0
        self.producer = KafkaProducer(producer_config(conn), self._report)
        self.topics = {t: kafka_topic(t, prefix) for t in ("heartbeat", "model_status")}
        self._seq = 0
        self._lock = threading.Lock()

    def _report(self, _seq: int, err: object) -> None:
        self.failed += err is not None

    def send(self, kind: str, node: str, value: bytes) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        headers = [("node_id", node.encode()), ("schema", b"edgecloud.event/v1")]
        self.producer.produce(seq, self.topics[kind], node.encode(), value, headers)


def heartbeats(ev: Events, names: list[str], labels: dict[str, str], period_s: float,
               stop: threading.Event) -> None:  # fmt: skip
    """Every node's heartbeat once per ``period_s``, spread evenly over the period."""
    n, i, t0 = len(names), 0, time.monotonic()
    while not stop.is_set():
        delay = t0 + i * period_s / n - time.monotonic()
        if delay > 0.002:
            stop.wait(delay)
        node = names[i % n]
        data = {
            "labels": labels, "active_models": [], "spool_depth": 0, "role": "agent",
            "counters": {"received": i // n, "processed": i // n, "dead_letters": 0},
        }  # fmt: skip
        ev.send("heartbeat", node, envelope("heartbeat", node, data))
        ev.producer.poll(0)
        i += 1
    ev.producer.flush(30)


async def sim_node(c: httpx.AsyncClient, node: str, token: str, ev: Events, t: Tally,
                   opts: Options, done: asyncio.Event) -> None:  # fmt: skip
    """What a model agent does on the wire: long-poll desired state, apply a rollout."""
    auth_h = {"Authorization": f"Bearer {token}"}
    etag: str | None = None
    applied: str | None = None
    while not done.is_set():
        params = {"wait": opts.wait_s} if etag else {}
        headers = {**auth_h, "If-None-Match": etag} if etag else auth_h
        started = time.monotonic()
        try:
            res = await c.get(f"/api/v1/nodes/{node}/desired", params=params, headers=headers)
        except httpx.HTTPError as exc:
            t.error(type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        ms = (time.monotonic() - started) * 1000
        if res.status_code == 304:
            t.overshoot_ms.append(ms - opts.wait_s * 1000)
            continue
        if res.status_code != 200:
            t.error(f"http_{res.status_code}")
            await asyncio.sleep(1.0)
            continue
        if etag is None:
            t.first_poll_ms.append(ms)
        etag = res.headers.get("etag")
        model = res.json()["model"]
        if model is None or model.get("rollout_id") in (None, applied):
            continue
        applied = model["rollout_id"]
        art = await c.get(model["artifact_url"], headers=auth_h)
        if hashlib.sha256(art.content).hexdigest() != model["artifact_sha256"]:
            t.error("artifact_sha256")
            continue
        base = datetime.now(UTC)
        for i, phase in enumerate(PHASES):
            metrics = {**SHADOW, "readings": 50.0} if phase == "shadow" else {}
            data = {
                "rollout_id": applied, "model": model["name"], "version": model["version"],
                "phase": phase, "metrics": metrics,
            }  # fmt: skip
            ts = base.replace(microsecond=min(999_999, base.microsecond + i))
            ev.send("model_status", node, envelope("model_status", node, data, ts))
        t.active_at[node] = time.monotonic()


async def prober(c: httpx.AsyncClient, names: list[str], tokens: dict[str, str], t: Tally,
                 rate: float, done: asyncio.Event) -> None:  # fmt: skip
    """Unheld desired-state requests for random nodes at ``rate``/s (what a poll costs now)."""
    rng = random.Random(7)
    while not done.is_set():
        node = rng.choice(names)
        started = time.monotonic()
        try:
            res = await c.get(
                f"/api/v1/nodes/{node}/desired",
                headers={"Authorization": f"Bearer {tokens[node]}"},
            )
            if res.status_code == 200:
                t.probe_ms.append((time.monotonic() - started) * 1000)
            else:
                t.error(f"probe_http_{res.status_code}")
        except httpx.HTTPError as exc:
            t.error("probe_" + type(exc).__name__)
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


def start_cloud(work: Path, env: dict[str, str], port: int) -> tuple[int, int]:
    api = process.spawn(
        [*cli(), "cloud", "api", "--port", str(port), "--no-access-log"], work / "api.log", env
    )
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def died() -> str | None:
        return None if process.pid_alive(api) else "API exited:\n" + process.tail(work / "api.log")

    process.wait_until(healthy, 120, "cloud API", abort=died)
    worker = process.spawn([*cli(), "cloud", "worker"], work / "worker.log", env)
    return api, worker


def seed(db: str, names: list[str], labels: dict[str, str]) -> tuple[dict[str, str], str, str]:
    """Node rows and node tokens in bulk (one transaction), plus operate and admin tokens."""
    engine = make_engine(db)
    tokens: dict[str, str] = {}
    now = datetime.now(UTC)
    with Session(engine) as s:
        op, _ = auth.create_token(s, "operate", "bench")
        admin, _ = auth.create_token(s, "admin", "bench")
        for n in names:
            tokens[n] = auth.generate_token("node")
            s.add(Node(node_id=n, labels=labels, last_heartbeat=now))
            s.add(ApiToken(name=n, scope="node", node_id=n, token_hash=auth.hash_token(tokens[n])))
        s.commit()
    engine.dispose()
    return tokens, op, admin


def one_size(infra: Infra, n: int, opts: Options, say: Callable[[str], None]) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    work = Path(f"/tmp/edgecloud-bench-fleet-{tag}")
    work.mkdir(parents=True)
    db_name = f"bench_fleet_{tag}"
    db = infra.create_database(db_name)
    prefix = f"fleet{tag}."
    infra.kafka_grant(prefix)
    topics = [kafka_topic(k, prefix) for k in ("reading", "heartbeat", "model_status")]
    ensure_topics(infra.kafka_client(), [*topics, kafka_dead_letter_topic(prefix)], partitions=3)
    port = process.free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = cloud_env(
        db,
        work / "registry",
        1.0,
        **infra.kafka_client("worker").env(),
        EDGECLOUD_KAFKA_TOPIC_PREFIX=prefix,
        EDGECLOUD_KAFKA_GROUP_ID=f"{DEFAULT_GROUP_ID}-fleet-{tag}",  # the worker's groups
        EDGECLOUD_API_MAX_CONNECTIONS=str(n + 1000),  # every node holds one long-poll
        EDGECLOUD_API_DB_POOL=os.environ.get("EDGECLOUD_API_DB_POOL", "10"),
    )
    api, worker = start_cloud(work, env, port)
    labels = {"fleet": tag}
    names = [f"f{tag}-{i:05d}" for i in range(n)]
    stop_hb = threading.Event()
    try:
        tokens, op, admin = seed(db, names, labels)
        key = generate_key()
        h = {"Authorization": f"Bearer {op}"}
        httpx.post(
            api_url + "/api/v1/operator-keys",
            json={"public_key": public_key_b64(key)},
            headers={"Authorization": f"Bearer {admin}"},
        ).raise_for_status()
        bundle = linear_bundle(work / "v2", "1.1.0", key, weights=(0.05, 2.02, 0.1))
        httpx.post(
            api_url + "/api/v1/models", files={"bundle": ("b.tgz", pack_folder(bundle))}, headers=h
        ).raise_for_status()
        ev = Events(infra.kafka_client("bridge"), prefix)
        hb = threading.Thread(
            target=heartbeats, args=(ev, names, labels, opts.heartbeat_s, stop_hb), daemon=True
        )
        hb.start()
        res = asyncio.run(_drive(api_url, names, tokens, op, tag, ev, opts, api, worker, say))
        with make_engine(db).connect() as conn:
            lag = conn.execute(
                sa.text(
                    "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
                    "(ORDER BY extract(epoch FROM received_at - ts) * 1000), count(*) "
                    "FROM heartbeats WHERE received_at >= to_timestamp(:t0)"
                ),
                {"t0": res.pop("window_start_epoch")},
            ).one()
            size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
        res.update(
            heartbeat_lag_p50_ms=round(float(lag[0][0] or 0), 1),
            heartbeat_lag_p99_ms=round(float(lag[0][1] or 0), 1),
            heartbeats_in_window=int(lag[1]),
            heartbeats_failed_to_produce=ev.failed,
            pg_size_mb=round(int(size or 0) / 2**20, 1),
        )
        return res
    finally:
        stop_hb.set()
        for pid in (worker, api):
            process.terminate(pid, timeout=20)
        infra.drop_database(db_name)


async def _drive(api_url: str, names: list[str], tokens: dict[str, str], op: str, tag: str,
                 ev: Events, opts: Options, api: int, worker: int,
                 say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    n = len(names)
    t = Tally()
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=n + 50, max_keepalive_connections=n + 50)
    timeout = httpx.Timeout(opts.wait_s + 60, connect=30)
    samplers = {"api": Sampler(api), "worker": Sampler(worker)}
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=timeout) as c:
        sims = [
            asyncio.create_task(sim_node(c, name, tokens[name], ev, t, opts, done))
            for name in names
        ]
        try:
            warm_deadline = time.monotonic() + 300
            while len(t.first_poll_ms) < n and time.monotonic() < warm_deadline:
                await asyncio.sleep(0.5)
            say(f"{n} nodes: {len(t.first_poll_ms)} polled once, errors {t.errors}")
            sims.append(asyncio.create_task(prober(c, names, tokens, t, opts.probe_rate, done)))
            for s in samplers.values():
                s.start()
            cpu0 = {k: proc_cpu_s(s.pid) for k, s in samplers.items()}
            cpu0["bench"] = proc_cpu_s(os.getpid())  # the simulated fleet itself
            window_start, w0 = time.time(), time.monotonic()
            await asyncio.sleep(opts.settle_s)
            r0 = time.monotonic()
            state, ro = await _rollout(api_url, op, tag, opts)
            rollout_s = time.monotonic() - r0
            window = time.monotonic() - w0
            cpu = {k: proc_cpu_s(s.pid) - cpu0[k] for k, s in samplers.items()}
            cpu["bench"] = proc_cpu_s(os.getpid()) - cpu0["bench"]
        finally:
            for s in samplers.values():
                s.stop.set()
            done.set()
            for task in sims:
                task.cancel()
            await asyncio.gather(*sims, return_exceptions=True)
    active = sum(1 for x in ro["nodes"] if x["status"] == "active")
    unheld = [*t.first_poll_ms, *t.probe_ms]
    say(f"{n} nodes: rollout {state} in {rollout_s:.1f} s, probe p99 "
        f"{percentile(t.probe_ms, 99):.1f} ms")  # fmt: skip
    return {
        "nodes": n,
        "rollout_state": state,
        "rollout_s": round(rollout_s, 2),
        "active": active,
        "desired_poll_p50_ms": round(percentile(unheld, 50), 2),
        "desired_poll_p99_ms": round(percentile(unheld, 99), 2),
        "first_poll_p99_ms": round(percentile(t.first_poll_ms, 99), 2),
        "probe_p50_ms": round(percentile(t.probe_ms, 50), 2),
        "probe_p99_ms": round(percentile(t.probe_ms, 99), 2),
        "probes": len(t.probe_ms),
        "longpoll_overshoot_p99_ms": round(percentile(t.overshoot_ms, 99), 1),
        "longpolls_answered_304": len(t.overshoot_ms),
        "errors": t.errors,
        "window_s": round(window, 1),
        "api_cpu_pct": round(100 * cpu["api"] / window, 1),
        "worker_cpu_pct": round(100 * cpu["worker"] / window, 1),
        "fleet_sim_cpu_pct": round(100 * cpu["bench"] / window, 1),
        "loadavg_1m": os.getloadavg()[0],
        "api_rss_mb_peak": round(samplers["api"].peak_rss, 1),
        "worker_rss_mb_peak": round(samplers["worker"].peak_rss, 1),
        "window_start_epoch": window_start,
    }


async def _rollout(api_url: str, op: str, tag: str, opts: Options) -> tuple[str, dict[str, Any]]:
    """Start the rollout to the whole fleet and follow it to its end (or the timeout)."""
    body = {
        "model": "press-linear:1.1.0",
        "selector": {"fleet": tag},
        "waves": list(opts.waves),
        "gates": {"shadow_readings": 50, "min_agreement": 0.9},
    }
    h = {"Authorization": f"Bearer {op}"}
    async with httpx.AsyncClient(base_url=api_url, headers=h, timeout=30) as c:
        res = await c.post("/api/v1/rollouts", json=body)
        res.raise_for_status()
        rid = res.json()["id"]
        state, ro = "?", dict[str, Any](nodes=[])
        deadline = time.monotonic() + opts.rollout_timeout_s
        while time.monotonic() < deadline:
            try:  # the API closes a keep-alive connection idle for its header timeout
                ro = (await c.get(f"/api/v1/rollouts/{rid}")).json()
            except httpx.HTTPError:
                continue
            state = ro["state"]
            if state in ("succeeded", "failed", "aborted"):
                break
            await asyncio.sleep(0.5)
    return state, ro


def run(
    infra: Infra,
    sizes: list[int],
    opts: Options | None = None,
    say: Callable[[str], None] = print,
) -> BenchResult:
    opts = opts or Options()
    rows = []
    for n in sizes:
        say(f"fleet of {n} nodes")
        rows.append(one_size(infra, n, opts, say))
        say(json.dumps(rows[-1]))
    last = rows[-1]
    return BenchResult(
        name="fleet",
        messages=last["nodes"],
        seconds=last["rollout_s"],
        rate_per_s=round(last["active"] / max(1e-6, last["rollout_s"]), 2),
        p50_ms=last["desired_poll_p50_ms"],
        p99_ms=last["desired_poll_p99_ms"],
        lost=last["nodes"] - last["active"],
        duplicates=0,
        limit_rate_per_s=0.0,
        ratio_to_limit=0.0,
        extra={
            "sizes": rows,
            "options": {**opts.__dict__, "waves": list(opts.waves)},
            "figures_of": "the largest size; rate_per_s = nodes active per second of rollout",
            "limit": "none: no raw library does a fleet's work (limit fields are 0)",
            "loadavg": os.getloadavg(),
        },
    )
