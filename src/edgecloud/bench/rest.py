"""REST benchmark: the aggregates query over 1,000,000 stored readings at a fixed arrival rate.

For ``bench/cloud.py`` (``edgecloud bench cloud``)::

    from edgecloud.bench import rest
    result: BenchResult = rest.run(admin_url, readings=1_000_000, rate=500.0, duration_s=20.0)

``admin_url``: a Postgres URL whose user may CREATE DATABASE (the ``stack`` fixture's
``pg_admin_url``, or the dev stack's). ``run`` makes a fresh database, migrates it, seeds
``readings`` / ``devices`` / ``aggregates_1m`` / ``aggregates_1h`` in SQL (generate_series, no
client round trips), starts ``edgecloud cloud api`` as a subprocess (uvicorn, default
settings, access log on), and drives ``GET /api/v1/aggregates`` open-loop: request i is due
at ``t0 + i / rate`` whatever the answers before it, and its latency is counted from that due
time (no coordinated omission).
The mix: 1m buckets over a 1 h window, 5m over 6 h, 1h over the whole span, random device and
metric. The limit is the same SQL sent by psycopg (async, a pool of connections) at the same
rate in the same run: ``limit_rate_per_s`` its achieved rate, ``ratio_to_limit`` =
``limit p99 / API p99`` (1.0: the API adds nothing to the database's own tail latency).
``lost`` = requests that failed or did not answer 200. The database is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from psycopg import sql

from edgecloud.bench.common import BenchResult, percentile
from edgecloud.cloud.api.params import floor_to
from edgecloud.cloud.api.queries import pg_items_json_sql

log = logging.getLogger("edgecloud.bench.rest")

METRICS = ("temperature", "vibration_rms", "pressure")
STEPS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


@dataclass(frozen=True)
class Dataset:
    devices: int
    readings: int
    interval_s: int
    end: datetime

    @property
    def per_device(self) -> int:
        return self.readings // self.devices

    @property
    def start(self) -> datetime:
        return self.end - timedelta(seconds=self.per_device * self.interval_s)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_db(url: str, name: str) -> str:
    base, _, query = _libpq(url).partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return base + ("?" + query if query else "")


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_db(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def seed(url: str, data: Dataset, anomaly_every: int = 97) -> None:
    """Readings, devices, aggregates_1m and _1h and two nodes, all in SQL (about 30 s for 1M), then
    VACUUM (ANALYZE), so that no autovacuum of the new rows runs during the measurement."""
    params = {
        "devices": data.devices,
        "n": data.per_device,
        "step": data.interval_s,
        "start": data.start,
        "every": anomaly_every,
    }
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            """
            INSERT INTO readings (event_id, device_id, seq, node_id, ts, received_at, values,
                                  model, model_version, score, anomaly, escalate)
            SELECT md5(d || '/' || s)::uuid, 'dev-' || lpad(d::text, 4, '0'), s,
                   'edge-' || (d %% 2), ts, ts,
                   jsonb_build_object(
                     'temperature', round((60 + 10 * sin(s / 50.0) + (d %% 7))::numeric, 3),
                     'vibration_rms', round((0.4 + 0.1 * cos(s / 13.0))::numeric, 4),
                     'pressure', round((3 + 0.2 * sin(s / 7.0))::numeric, 4)),
                   'bench-model', '1', 1 - (s %% %(every)s)::float / %(every)s,
                   s %% %(every)s = 0, s %% (%(every)s * 5) = 0
            FROM generate_series(0, %(devices)s - 1) AS d,
                 generate_series(1, %(n)s) AS s,
                 LATERAL (SELECT %(start)s::timestamptz + (s * %(step)s) * interval '1 second'
                          AS ts) t
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO aggregates_1m (device_id, metric, bucket, count, sum, min, max,
                                       anomaly_count)
            SELECT r.device_id, v.key, date_trunc('minute', r.ts), count(*),
                   sum(v.value::numeric), min(v.value::float8), max(v.value::float8),
                   count(*) FILTER (WHERE r.anomaly)
            FROM readings r, jsonb_each_text(r.values) v
            GROUP BY 1, 2, 3
            """
        )
        # the hourly rollup the worker keeps beside the minutes (1h/1d buckets read it)
        conn.execute(
            """
            INSERT INTO aggregates_1h (device_id, metric, bucket, count, sum, min, max,
                                       anomaly_count)
            SELECT device_id, metric, date_trunc('hour', bucket, 'UTC'), sum(count), sum(sum),
                   min(min), max(max), sum(anomaly_count)
            FROM aggregates_1m GROUP BY 1, 2, 3
            """
        )
        conn.execute(
            """
            INSERT INTO devices (device_id, node_id, first_seen, last_seen, last_seq, readings)
            SELECT device_id, min(node_id), min(ts), max(ts), max(seq), count(*)
            FROM readings GROUP BY device_id
            """
        )
        conn.execute(
            """
            INSERT INTO nodes (node_id, labels, first_seen, last_heartbeat, active_models,
                               counters)
            SELECT 'edge-' || i, jsonb_build_object('site', 'site-' || (i + 1)), now(), now(),
                   '[{"name": "bench-model", "version": "1"}]'::jsonb,
                   '{"received": 0, "processed": 0, "dead_letters": 0}'::jsonb
            FROM generate_series(0, 1) AS i
            """
        )
        conn.commit()
        # VACUUM now: left to autovacuum, the freshly inserted 1M rows were vacuumed about a
        # minute after the seed, i.e. during the API phase (the limit phase runs first), and
        # that worker took CPU the API needed on two cores. Both phases now see the same tables.
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(
    url: str, port: int, log_file: Path, extra_args: list[str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDGECLOUD_DATABASE_URL": url, "EDGECLOUD_LOG_LEVEL": "INFO"}
    argv = [
        sys.executable,
        "-c",
        "from edgecloud.cli import main; main()",
        "cloud",
        "api",
        "--port",
        str(port),
        "--no-migrate",
        *(extra_args or []),
    ]
    with log_file.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cloud api exited with {proc.returncode}; see {log_file}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"cloud api did not become healthy; see {log_file}")


def make_token(url: str) -> str:
    from sqlmodel import Session

    from edgecloud.cloud.auth import create_token
    from edgecloud.cloud.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            token, _ = create_token(session, "read", "bench-rest")
    finally:
        engine.dispose()
    return token


def queries(data: Dataset, n: int, seed_: int = 7) -> list[dict[str, Any]]:
    """``n`` aggregates queries: (device, metric, bucket, window) drawn at random."""
    rnd = random.Random(seed_)
    span = data.end - data.start
    out = []
    for _ in range(n):
        bucket, window = rnd.choice(
            [("1m", timedelta(hours=1)), ("5m", timedelta(hours=6)), ("1h", span)]
        )
        window = min(window, span)
        since = data.start + (span - window) * rnd.random()
        out.append(
            {
                "device_id": f"dev-{rnd.randrange(data.devices):04d}",
                "metric": rnd.choice(METRICS),
                "bucket": bucket,
                "since": since.replace(second=0, microsecond=0),
                "until": (since + window).replace(second=0, microsecond=0),
            }
        )
    return out


Sender = Callable[[dict[str, Any]], Awaitable[bool]]


async def drive(senders: list[Sender], plan: list[dict[str, Any]], rate: float) -> Any:
    """Open loop: query i is due at t0 + i/rate and queued then, whatever the answers before
    it; each sender (one connection) takes the next due query. Latency counts from the due
    time, so time spent queued behind a slow answer is in it (no coordinated omission)."""
    latencies: list[float] = []
    failures = 0
    loop = asyncio.get_running_loop()
    due_q: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def work(send: Sender) -> None:
        nonlocal failures
        while True:
            due, q = await due_q.get()
            try:
                ok = await send(q)
            except Exception:  # a failed request is counted as lost, whatever the cause
                ok = False
            if ok:
                latencies.append((loop.time() - due) * 1000)
            else:
                failures += 1
            due_q.task_done()

    tasks = [asyncio.create_task(work(s)) for s in senders]
    t0 = loop.time() + 0.05
    for i, q in enumerate(plan):
        due = t0 + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        due_q.put_nowait((due, q))
    await due_q.join()
    elapsed = loop.time() - t0
    for t in tasks:
        t.cancel()
    return latencies, failures, elapsed


class HttpConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator.

    httpx's AsyncClient was the first choice; measured here it costs about 2 ms of CPU per
    request, so on two cores the client would compete with the server it measures. This costs
    about 0.2 ms. (httpx still checks the answer's body once, in ``_run_api``.)
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = f"host: {host}:{port}\r\nauthorization: Bearer {token}\r\n\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {target} HTTP/1.1\r\n{self.head}".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(v)
            for k, _, v in (ln.partition(b":") for ln in lines[1:])
            if k.strip().lower() == b"content-length"
        )
        return int(lines[0].split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _target(q: dict[str, Any]) -> str:
    params = {**q, "since": q["since"].isoformat(), "until": q["until"].isoformat()}
    return "/api/v1/aggregates?" + urlencode(params)


async def _run_api(
    port: int, token: str, plan: list[dict[str, Any]], rate: float, conns: int = 16
) -> Any:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        res = await client.get(_target(plan[0]), headers={"Authorization": f"Bearer {token}"})
        if res.status_code != 200 or not res.json()["items"]:
            raise RuntimeError(f"aggregates answered {res.status_code}: {res.text[:200]}")
    pool = [HttpConnection("127.0.0.1", port, token) for _ in range(conns)]

    def sender(conn: HttpConnection) -> Sender:
        async def send(q: dict[str, Any]) -> bool:
            status, body = await conn.get(_target(q))
            return status == 200 and b'"count"' in body

        return send

    try:
        senders = [sender(c) for c in pool]
        await drive(senders, plan[:200], rate)  # warm-up: pools, prepared plans, caches
        return await drive(senders, plan, rate)
    finally:
        for c in pool:
            c.close()


def _ceil_to(ts: datetime, step: timedelta) -> datetime:
    down = floor_to(ts, step)
    return down if down == ts else down + step


async def _run_raw(url: str, plan: list[dict[str, Any]], rate: float, conns: int = 16) -> Any:
    pool = [
        await psycopg.AsyncConnection.connect(_libpq(url), autocommit=True) for _ in range(conns)
    ]

    def sender(conn: psycopg.AsyncConnection[Any]) -> Sender:
        async def send(q: dict[str, Any]) -> bool:
            step = STEPS[q["bucket"]]
            args = {
                "device_id": q["device_id"],
                "metric": q["metric"],
                "since": floor_to(q["since"], step),  # onto the bucket grid, as the API does
                "until": _ceil_to(q["until"], step),
                "step": step,
            }
            # the statement the API runs (cloud/api/queries.py), sent the same way, by psycopg
            sql_text = pg_items_json_sql(STEPS[q["bucket"]], q["metric"])
            cur = await conn.execute(sql_text.encode(), args)
            row = await cur.fetchone()  # the items array as JSON text, as the API gets it
            return row is not None and '"count"' in row[0]

        return send

    try:
        senders = [sender(c) for c in pool]
        await drive(senders, plan[:200], rate)
        return await drive(senders, plan, rate)
    finally:
        for c in pool:
            await c.close()


def run(
    admin_url: str,
    *,
    readings: int = 1_000_000,
    devices: int = 100,
    rate: float = 500.0,
    duration_s: float = 20.0,
    interval_s: int = 10,
    keep_database: bool = False,
) -> BenchResult:
    name = f"edgecloud_bench_rest_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    log_file = Path(tempfile.gettempdir()) / f"{name}.api.log"
    data = Dataset(devices, readings, interval_s, datetime.now(UTC).replace(microsecond=0))
    proc: subprocess.Popen[bytes] | None = None
    try:
        from edgecloud.cloud.migrations import migrate

        migrate(url)
        t = time.perf_counter()
        seed(url, data)
        seed_s = time.perf_counter() - t
        token = make_token(url)
        plan = queries(data, int(rate * duration_s))
        load = [_load()]
        raw_lat, raw_lost, raw_s = asyncio.run(_run_raw(url, plan, rate))
        port = _free_port()
        proc = start_api(url, port, log_file)
        load.append(_load())
        cpu0 = _cpu_s(proc.pid)
        api_lat, api_lost, api_s = asyncio.run(_run_api(port, token, plan, rate))
        cpu1 = _cpu_s(proc.pid)
        load.append(_load())
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        if not keep_database:
            drop_database(admin_url, name)
    api_p99, raw_p99 = percentile(api_lat, 99), percentile(raw_lat, 99)
    return BenchResult(
        name="rest",
        messages=len(plan),
        seconds=round(api_s, 3),
        rate_per_s=round(len(api_lat) / api_s, 1),
        p50_ms=round(percentile(api_lat, 50), 3),
        p99_ms=round(api_p99, 3),
        lost=api_lost,
        duplicates=0,
        limit_rate_per_s=round(len(raw_lat) / raw_s, 1),
        ratio_to_limit=round(raw_p99 / api_p99, 3) if api_p99 else 0.0,
        extra={
            "target_rate_per_s": rate,
            "readings": data.per_device * devices,
            "devices": devices,
            "seed_s": round(seed_s, 1),
            "limit_p50_ms": round(percentile(raw_lat, 50), 3),
            "limit_p99_ms": round(raw_p99, 3),
            "limit_lost": raw_lost,
            "api_max_ms": round(max(api_lat, default=0.0), 3),
            # the API process's CPU per request over warm-up + run (on a shared machine: how
            # much of a core 500/s needs), and the 1-minute load average before the limit
            # phase, before the API phase and after it (other work on the machine)
            "api_cpu_ms_per_request": (
                round((cpu1 - cpu0) * 1000 / (len(plan) + 200), 3)
                if cpu0 is not None and cpu1 is not None
                else None
            ),
            "load_avg": load,
            "api_log": str(log_file),
            "query": "GET /api/v1/aggregates (1m/1h, 5m/6h, 1h/all; random device, metric)",
        },
    )
