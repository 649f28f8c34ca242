"""``edgecloud bench edge``: devices -> MQTT -> edge agent -> committed rows + events out.

Per run: a fresh Postgres database, the real agent (``edgecloud edge run`` as a child process,
with the bundled model), ``publishers`` publisher processes sending ONE reading per MQTT
message (QoS 1, as devices do; ``ts`` = the publish time), and a subscriber here counting the
reading events the agent publishes. The run ends when every reading is a row and every event
came back (or at a timeout). Figures:

- ``rate_per_s``: readings / (last commit - first publish);
- ``p50_ms`` / ``p99_ms``: per reading, publish (its ``ts``) -> commit of its batch (the
  agent's wall clock right after COMMIT returned, stored in ``outbox.committed_at``);
- ``lost``: readings published but not stored; ``duplicates``: rows stored more than once
  (the primary key makes it 0; ``extra.event_duplicates`` counts events published twice);
- ``limit_rate_per_s``: the slower of onnxruntime alone on the same batches (the model file of
  the bundle, the same feature matrix) and psycopg COPY alone of the same rows into the same
  table shape, one transaction per batch, measured in the same run;
- ``extra.agent_rss_mb``: the agent's largest VmRSS, sampled during the run.

Latency runs at a fixed rate (``latency_rate``, default 5,000/s), as many as throughput runs,
follow them; ``extra.latency_run`` holds each run's p50 / p99 and their medians.

Publishers send with ``bench/blast.py`` (packets made before the start, a chunk per write).

``--model image``: a generated image model (``bench/tensor_models.py``: x float32
[N,3,H,W], dynamic H/W) whose manifest resizes each frame to 224x224 and applies scale and
mean/std; each reading carries one 160x120 RGB uint8 camera frame in the binary form (~77 KB
of base64). The onnxruntime limit then runs the same model alone on batches of 32 frames
already at [32,3,224,224]: what the agent adds is the frame decoding and preprocessing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from edgecloud.adapters.mqtt import MqttConfig, make_publisher, make_subscriber
from edgecloud.bench.blast import blast, prebuild
from edgecloud.bench.common import BenchResult, percentile
from edgecloud.core.gctune import tune_gc
from edgecloud.core.settings import mqtt_client_options
from edgecloud.testing.edge_process import AgentProcess, rss_mb

log = logging.getLogger("edgecloud.bench.edge")

FEATURES = ("temperature", "vibration_rms", "pressure", "current")
DEFAULT_MODEL = Path("models/bundles/sensor-anomaly/1.0.0")
DEFAULT_KEYS = Path("models/dev-keys")
IMAGE = "image"  # --model image: the generated image model and camera frames
IMAGE_FRAME = (120, 160, 3)  # height, width, channels of the frames devices send
IMAGE_INPUT = 224  # the manifest resizes to IMAGE_INPUT x IMAGE_INPUT
IMAGE_PAYLOAD_BYTES = 1024 * 1024


@dataclass
class Target:
    admin_url: str  # postgresql://... of a user that may CREATE DATABASE
    mqtt_host: str
    mqtt_port: int
    agent_account: tuple[str | None, str | None]
    device_account: tuple[str | None, str | None]
    observer_account: tuple[str | None, str | None]  # may read edgecloud/+/events/#
    create_database: Any  # name -> url
    drop_database: Any  # name -> None
    close: Any = None  # stops what the benchmark started for itself


@dataclass
class RunOutcome:
    result: BenchResult
    rss_mb: float
    cpu_us_per_reading: float
    event_duplicates: int
    limit_onnx: float | None
    limit_copy: float
    counters: dict[str, int] = field(default_factory=dict)


def _values(rng: random.Random) -> dict[str, float]:
    return {
        "temperature": round(rng.gauss(70, 2), 3), "vibration_rms": round(rng.gauss(0.4, 0.05), 4),
        "pressure": round(rng.gauss(3.0, 0.1), 3), "current": round(rng.gauss(12, 0.5), 3),
    }  # fmt: skip


_TS = "__ts__"  # where the publish time goes in a prebuilt payload


def _payloads(args: dict[str, Any]) -> list[tuple[str, bytes, bytes]]:
    """(topic, head, tail) of every reading of this publisher, made before the start (making a
    reading costs more CPU than publishing it, and the publishers share the machine with what
    they measure); the publish time is written between head and tail when it is sent."""
    rng = random.Random(args["seed"])
    devices: list[str] = args["devices"]
    frames = _frames(args["seed"]) if args.get("image") else []
    out = []
    for seq in range(args["per_device"]):
        for i, dev in enumerate(devices):
            values: dict[str, Any] = (
                {"image": frames[(seq + i) % len(frames)]} if frames else _values(rng)
            )
            body = {"device_id": dev, "seq": seq, "ts": _TS, "values": values}
            head, tail = json.dumps(body).encode().split(b'"' + _TS.encode() + b'"')
            out.append((f"devices/{dev}/telemetry", head, tail))
    return out


def _frames(seed: int, n: int = 8) -> list[dict[str, Any]]:
    """``n`` camera frames (smooth gradients plus noise, as images are), in the binary form."""
    import numpy as np

    from edgecloud.core.tensors import encode_binary

    rng = np.random.default_rng(seed)
    h, w, c = IMAGE_FRAME
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for k in range(n):
        base = np.stack([(yy * (k + 1) + xx * c_) % 256 for c_ in range(1, c + 1)], axis=-1)
        noisy = base + rng.integers(-8, 9, base.shape)
        out.append(encode_binary(np.clip(noisy, 0, 255).astype(np.uint8)))
    return out


def image_bundle(folder: Path) -> tuple[Path, str]:
    """The ``--model image`` bundle (signed by a key made here) and its public key."""
    from edgecloud.bench.tensor_models import IMAGE_MEAN, IMAGE_STD, write_bundle
    from edgecloud.core.signing import generate_key, public_key_b64

    key = generate_key()
    pre = {"resize": [IMAGE_INPUT, IMAGE_INPUT], "scale": 1 / 255, "mean": IMAGE_MEAN,
           "std": IMAGE_STD}  # fmt: skip
    inputs = {"x": {"from": "tensor", "value": "image", "layout": "HWC", "preprocess": pre}}
    return write_bundle(folder, "image", key, changes={"inputs": inputs}), public_key_b64(key)


def _publisher_main(args: dict[str, Any], out: Any) -> None:
    """One publisher process: devices ``devices``, ``per_device`` readings each, paced."""
    cfg = MqttConfig(host=args["host"], port=args["port"], username=args["user"],
                     password=args["password"])  # fmt: skip
    packets = prebuild(_payloads(args), lambda: b"%.6f" % time.time())
    tune_gc()  # a full collection here took 50-280 ms: the paced stream came out in bursts
    out.put(("ready", 0, 0.0))
    start_at: float = args["start_at"]
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    sent = blast(cfg, packets, rate=args["rate"], timeout_s=600.0)
    out.put(("done", sent, time.monotonic() - t0))


class EventCounter:
    """Counts the reading events of one node (ids, duplicates) on the broker."""

    def __init__(self, target: Target, node_id: str) -> None:
        user, pw = target.observer_account
        cfg = MqttConfig(host=target.mqtt_host, port=target.mqtt_port, username=user, password=pw,
                         **mqtt_client_options())  # fmt: skip
        self.client_id = f"bench-ev-{uuid.uuid4().hex[:8]}"
        self._sub = make_subscriber(
            cfg, [f"edgecloud/{node_id}/events/reading"], client_id=self.client_id
        )
        self.ids: set[str] = set()
        self.events = 0
        self.last_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._sub.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for m in self._sub.get_batch(200, 0.05):
                events = json.loads(m.payload)
                for ev in events if isinstance(events, list) else [events]:
                    self.ids.add(ev["event_id"])
                    self.events += 1
                self.last_at = time.time()
                m.ack()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sub.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def forget_session(target: Target, client_id: str) -> None:
    """Drop a persistent session on the broker (clean start, no expiry), so that a finished
    run's agent does not keep queueing everyone's telemetry there."""
    user, pw = target.agent_account
    pub = make_publisher(MqttConfig(host=target.mqtt_host, port=target.mqtt_port, username=user,
                               password=pw, **mqtt_client_options()),
                         client_id=client_id)  # fmt: skip
    with contextlib.suppress(Exception):
        pub.start()
        pub.stop()


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _db_state(url: str, node: str) -> tuple[int, int]:
    """Rows and distinct (device, seq) of this run's devices (a shared broker carries more)."""
    with psycopg.connect(_pg(url)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM readings "
            "WHERE device_id LIKE %s",
            (f"bench-{node}-%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _latencies_and_span(url: str, node: str) -> tuple[list[float], float, float]:
    mine = (f"bench-{node}-%",)
    with psycopg.connect(_pg(url)) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM o.committed_at - r.ts) * 1000 FROM readings r "
            "JOIN outbox o USING (batch_id) WHERE r.device_id LIKE %s",
            mine,
        ).fetchall()
        span = conn.execute(
            "SELECT extract(epoch FROM min(r.ts)), extract(epoch FROM max(o.committed_at)) "
            "FROM readings r JOIN outbox o USING (batch_id) WHERE r.device_id LIKE %s",
            mine,
        ).fetchone()
    assert span is not None
    return [float(r[0]) for r in rows], float(span[0]), float(span[1])


# --- the raw-library limits -------------------------------------------------------------
def onnx_limit(model: Path | None, batch: int, total: int) -> float | None:
    """Readings/s of onnxruntime alone on batches of ``batch`` rows of the bundle's inputs."""
    if model is None:
        return None
    import numpy as np

    from edgecloud.adapters.onnx import OnnxSession
    from edgecloud.core.manifest import ConstantInput, TensorInput, ValuesInput, open_bundle

    bundle = open_bundle(model)
    if bundle.model_path is None:
        return None
    session = OnnxSession(bundle.model_path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds: dict[str, Any] = {}
    for info in session.inputs:
        spec = bundle.manifest.inputs.get(info.name)
        if isinstance(spec, ValuesInput):
            feeds[info.name] = rng.normal(size=(batch, len(spec.names))).astype(info.dtype)
        elif isinstance(spec, ConstantInput):
            feeds[info.name] = np.asarray(spec.value, dtype=info.dtype)
        elif isinstance(spec, TensorInput) and spec.preprocess and spec.preprocess.resize:
            h, w = spec.preprocess.resize  # the image as the model gets it, preprocessed
            batch = min(batch, 32)
            feeds[info.name] = rng.normal(size=(batch, 3, h, w)).astype(info.dtype)
        else:
            return None  # array / state inputs: no like-for-like raw batch here
    session.run(feeds)  # warm up
    t0 = time.perf_counter()
    done = 0
    while done < total:
        session.run(feeds)
        done += batch
    return done / (time.perf_counter() - t0)


def copy_limit(url: str, batch: int, total: int) -> float:
    """Rows/s of psycopg COPY alone: the agent's row shape, one transaction per batch."""
    from datetime import UTC, datetime

    rng = random.Random(0)
    now = datetime.now(UTC)
    inf = json.dumps({"model": "m", "version": "1", "outputs": {"score": 0.1}, "score": 0.1,
                      "label": None, "confidence": 0.9, "anomaly": False, "escalate": False,
                      "latency_ms": 0.05})  # fmt: skip
    rows = [
        (f"dev-{i % 100}", i, now, now, json.dumps(_values(rng)), inf, False, 0.1, 1)
        for i in range(batch)
    ]
    with psycopg.connect(_pg(url)) as conn:
        conn.execute("CREATE TABLE copy_limit (LIKE readings INCLUDING ALL)")
        conn.commit()
        t0 = time.perf_counter()
        done = 0
        while done < total:
            with (
                conn.cursor() as cur,
                cur.copy(
                    'COPY copy_limit (device_id, seq, ts, received_at, "values", inference, '
                    "anomaly, score, batch_id) FROM STDIN"
                ) as copy,
            ):
                for r in rows:
                    copy.write_row((r[0], r[1] + done, *r[2:]))
            conn.commit()
            done += batch
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE copy_limit")
        conn.commit()
    return done / elapsed


# --- one run ------------------------------------------------------------------------------
def _publish(
    target: Target, node: str, readings: int, rate: float | None, procs: int, image: bool = False
) -> None:
    devices = [f"bench-{node}-{i}" for i in range(100)]
    per_device = max(1, readings // len(devices))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0 + per_device * len(devices) / procs * 30e-6  # + prebuild
    children = []
    for p in range(procs):
        args = {
            "host": target.mqtt_host, "port": target.mqtt_port,
            "user": target.device_account[0], "password": target.device_account[1],
            "devices": devices[p::procs], "per_device": per_device, "seed": p,
            "rate": rate / procs if rate else None, "start_at": start_at, "image": image,
        }  # fmt: skip
        proc = ctx.Process(target=_publisher_main, args=(args, out), daemon=True)
        proc.start()
        children.append(proc)
    for proc in children:
        proc.join(600)


@contextlib.contextmanager
def _database(target: Target) -> Iterator[str]:
    name = f"bench_edge_{uuid.uuid4().hex[:8]}"
    url = target.create_database(name)
    try:
        yield url
    finally:
        target.drop_database(name)


def one_run(
    target: Target,
    *,
    readings: int,
    rate: float | None,
    publishers: int,
    model: Path | None,
    keys: str,
    measure_limits: bool,
    log_dir: Path,
    image: bool = False,
) -> RunOutcome:
    readings = (readings // 100) * 100
    node = f"bench{uuid.uuid4().hex[:6]}"
    with _database(target) as url:
        from edgecloud.edge.migrations import migrate

        migrate(url)
        agent = AgentProcess(
            node_id=node, database_url=url, mqtt_url=f"mqtt://{target.mqtt_host}:{target.mqtt_port}",
            mqtt_username=target.agent_account[0], mqtt_password=target.agent_account[1],
            log_path=log_dir / f"agent-{node}.log", model=str(model) if model else None,
            extra_env={"EDGECLOUD_OPERATOR_PUBLIC_KEYS": keys, "EDGECLOUD_LOG_LEVEL": "WARNING",
                       "EDGECLOUD_RETENTION_HOURS": "0", "EDGECLOUD_HEARTBEAT_INTERVAL_S": "5",
                       **({"EDGECLOUD_MAX_PAYLOAD_BYTES": str(IMAGE_PAYLOAD_BYTES)}
                          if image else {})},
        )  # fmt: skip
        agent.start()
        counter = EventCounter(target, node)
        counter.start()
        peak = [agent.rss_mb()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                peak.append(rss_mb(agent.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu0 = cpu_seconds(agent.pid)
        try:
            _publish(target, node, readings, rate, publishers, image)
            deadline = time.monotonic() + 120
            rows = distinct = 0
            while time.monotonic() < deadline:
                rows, distinct = _db_state(url, node)
                if distinct >= readings and len(counter.ids) >= readings:
                    break
                time.sleep(0.25)
            counters = agent.counters()
            cpu = cpu_seconds(agent.pid) - cpu0
        finally:
            stop.set()
            counter.stop()
            agent.stop()
            forget_session(target, f"edgecloud-agent-{node}")
            forget_session(target, counter.client_id)
        lat, first_ts, last_commit = _latencies_and_span(url, node)
        limit_onnx = onnx_limit(model, 500, 200_000) if measure_limits and model else None
        limit_copy = copy_limit(url, 500, 100_000) if measure_limits else 0.0
    seconds = max(1e-9, last_commit - first_ts)
    limits = [x for x in (limit_onnx, limit_copy) if x]
    limit = min(limits) if limits else 0.0
    rate_ = distinct / seconds
    result = BenchResult(
        name="edge", messages=readings, seconds=round(seconds, 3), rate_per_s=round(rate_, 1),
        p50_ms=round(percentile(lat, 50), 2), p99_ms=round(percentile(lat, 99), 2),
        lost=readings - distinct, duplicates=rows - distinct,
        limit_rate_per_s=round(limit, 1), ratio_to_limit=round(rate_ / limit, 3) if limit else 0.0,
    )  # fmt: skip
    cpu_us = round(cpu / max(1, distinct) * 1e6, 1)
    return RunOutcome(result, round(max(peak), 1), cpu_us, counter.events - len(counter.ids),
                      limit_onnx, limit_copy, counters)  # fmt: skip


def run(
    target: Target,
    *,
    readings: int = 60_000,
    rate: float | None = None,
    runs: int = 3,
    publishers: int = 2,
    latency_rate: float = 5000.0,
    latency_seconds: float = 10.0,
    model: Path | None = DEFAULT_MODEL,
    keys: str = "",
    log_dir: Path | None = None,
) -> BenchResult:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="edgecloud-bench-edge-"))
    image = model is not None and str(model) == IMAGE and not model.is_dir()
    if image:
        model, keys = image_bundle(log_dir / "image-model")
    if model is not None and not (model / "manifest.yaml").is_file():
        log.warning("no model bundle at %s: benchmarking without inference", model)
        model = None
    outs = []
    for i in range(runs):
        out = one_run(target, readings=readings, rate=rate, publishers=publishers, model=model,
                      keys=keys, measure_limits=True, log_dir=log_dir, image=image)  # fmt: skip
        log.info("run %d: %s", i + 1, out.result.model_dump_json())
        outs.append(out)
    # the latency run is repeated as often as the throughput run: on a shared 2-core machine one
    # run's p99 can catch a neighbour's burst (autovacuum, another process); the median is kept
    lats: list[RunOutcome] = []
    for _ in range(runs if latency_rate > 0 else 0):
        os.sync()  # the earlier runs' dirty pages go out now, not during the latency run
        lat = one_run(target, readings=int(latency_rate * latency_seconds), rate=latency_rate,
                      publishers=publishers, model=model, keys=keys, measure_limits=False,
                      log_dir=log_dir, image=image)  # fmt: skip
        log.info("latency run %d: %s", len(lats) + 1, lat.result.model_dump_json())
        lats.append(lat)
    extra: dict[str, Any] = {
        "model": str(model) if model else None,
        "image_frame": (
            {
                "height": IMAGE_FRAME[0],
                "width": IMAGE_FRAME[1],
                "channels": IMAGE_FRAME[2],
                "dtype": "uint8",
                "model_input": [3, IMAGE_INPUT, IMAGE_INPUT],
            }
            if image
            else None
        ),
        "publishers": publishers,
        "offered_rate_per_s": rate,
        "agent_rss_mb": max(o.rss_mb for o in outs + lats),
        "event_duplicates": sum(o.event_duplicates for o in outs + lats),
        "agent_cpu_us_per_reading": [o.cpu_us_per_reading for o in outs],
        "limit_onnx_rate_per_s": [round(o.limit_onnx, 1) if o.limit_onnx else None for o in outs],
        "limit_copy_rate_per_s": [round(o.limit_copy, 1) for o in outs],
        "agent_counters": [o.counters for o in outs],
        "logs": str(log_dir),
    }
    if lats:
        res = [lat.result for lat in lats]
        extra["latency_run"] = {
            "rate_per_s": latency_rate, "readings": res[0].messages, "runs": len(lats),
            "achieved_rate_per_s": statistics.median(r.rate_per_s for r in res),
            "p50_ms": statistics.median(r.p50_ms for r in res),
            "p99_ms": statistics.median(r.p99_ms for r in res),
            "per_run": [{"p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                         "achieved_rate_per_s": r.rate_per_s} for r in res],
            "lost": sum(r.lost for r in res), "rss_mb": max(lat.rss_mb for lat in lats),
            "agent_cpu_us_per_reading": statistics.median(lat.cpu_us_per_reading for lat in lats),
        }  # fmt: skip
    return BenchResult.from_runs("edge", [o.result for o in outs], **extra)


def make_target(admin_url: str | None = None, mqtt_url: str | None = None) -> Target:
    """The given Postgres / MQTT. Defaults: the dev stack's Postgres (started if need be), and
    a Mosquitto of the benchmark's own on a free port: agents of a running stack subscribe
    ``devices/+/telemetry`` too and would both take the benchmark's readings and slow it."""
    from urllib.parse import unquote, urlsplit

    from edgecloud.dev import postgres
    from edgecloud.dev.stack import DEV_PORTS, External, Infra, Ports, default_state_dir, state_lock

    infra = Infra(default_state_dir("dev"), DEV_PORTS, External(postgres_url=admin_url))
    if admin_url is None:
        with state_lock(infra.state_dir):
            infra.postgres.start()
    if mqtt_url is not None:
        parts = urlsplit(mqtt_url)
        account = (unquote(parts.username or "") or None, unquote(parts.password or "") or None)
        host, port = parts.hostname or "127.0.0.1", parts.port or 1883
        agent_account = device_account = observer_account = account
        close: Any = lambda: None  # noqa: E731
    else:
        own = Infra(Path(tempfile.mkdtemp(prefix="edgecloud-bench-mqtt-")), Ports.free())
        own.mosquitto.start()
        host, port = own.mqtt_host, own.mqtt_port
        agent_account = own.mqtt_account("edge-agent")
        device_account = own.mqtt_account("simulator")
        observer_account = own.mqtt_account("admin")
        close = own.mosquitto.stop
    admin = infra.pg_admin_url
    return Target(
        admin_url=admin, mqtt_host=host, mqtt_port=port,
        agent_account=agent_account, device_account=device_account,
        observer_account=observer_account,
        create_database=lambda name: postgres.create_database(admin, name),
        drop_database=lambda name: postgres.drop_database(admin, name),
        close=close,
    )  # fmt: skip


def default_keys(folder: Path = DEFAULT_KEYS) -> str:
    """The development public key(s) of ``models/dev-keys`` (comma separated paths)."""
    if not folder.is_dir():
        return ""
    return ",".join(str(p) for p in sorted(folder.iterdir()) if p.suffix in (".pub", ".b64"))
