"""The benchmarks' SVG charts, and the events the fleet's simulated nodes send."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from edgecloud.bench.chart import Panel, bench_chart, fleet_chart, write_svg
from edgecloud.bench.common import BenchResult
from edgecloud.bench.fleet import envelope
from edgecloud.core.events import EVENT_ADAPTER, HeartbeatEvent, ModelStatusEvent

NS = "{http://www.w3.org/2000/svg}"


def result(name: str, per_run: list[dict], **extra: object) -> BenchResult:
    return BenchResult(
        name=name, messages=10, seconds=1.0, rate_per_s=1.0, p50_ms=1.0, p99_ms=2.0, lost=0,
        duplicates=0, limit_rate_per_s=0.0, ratio_to_limit=0.0,
        extra={"per_run": per_run, **extra},
    )  # fmt: skip


def polylines(path: Path) -> list[list[tuple[float, float]]]:
    root = ET.parse(path).getroot()
    out = []
    for el in root.iter(f"{NS}polyline"):
        pts = [tuple(float(v) for v in p.split(",")) for p in el.attrib["points"].split()]
        out.append(pts)
    return out


def test_bench_chart_draws_ours_limit_and_peer_per_run(tmp_path: Path) -> None:
    runs = [
        {"rate_per_s": r, "p99_ms": p, "limit_rate_per_s": 2 * r}
        for r, p in ((100, 9), (200, 5), (150, 7))
    ]
    peer = {
        "telegraf-disk": {"per_run": [{"rate_per_s": 50, "p99_ms": 20}] * 3},
        "ratio_ours_to": {"telegraf-disk": {"rate_per_s": 3.0}},
    }
    path = bench_chart(result("bridge", runs, peer=peer), tmp_path / "bridge.svg")
    lines = polylines(path)
    # rate: ours, limit, peer; p99: ours, peer
    assert [len(pts) for pts in lines] == [3, 3, 3, 3, 3]
    ours_rate = lines[0]
    # a higher rate is drawn higher (smaller y): run 2 > run 3 > run 1
    assert ours_rate[1][1] < ours_rate[2][1] < ours_rate[0][1]
    text = path.read_text()
    assert ">telegraf-disk<" in text and ">limit<" in text


def test_a_result_without_runs_or_peer_draws_one_point(tmp_path: Path) -> None:
    res = result("mqtt", [])
    res.extra.pop("per_run")
    lines = polylines(bench_chart(res, tmp_path / "m.svg"))
    assert [len(pts) for pts in lines] == [1, 1]


def test_fleet_chart_has_the_goal_and_one_point_per_size(tmp_path: Path) -> None:
    sizes = [
        {"nodes": n, "desired_poll_p99_ms": p, "desired_poll_p50_ms": p / 2,
         "heartbeat_lag_p99_ms": 10.0, "rollout_s": n / 100, "api_cpu_pct": 30.0,
         "worker_cpu_pct": 5.0}
        for n, p in ((1000, 8.0), (3000, 20.0), (10000, 70.0))
    ]  # fmt: skip
    path = fleet_chart(result("fleet", [], sizes=sizes), tmp_path / "fleet.svg")
    assert all(len(pts) == 3 for pts in polylines(path))
    assert "goal 50" in path.read_text()


def test_titles_are_escaped(tmp_path: Path) -> None:
    path = write_svg("a <b> & c", [Panel("x<y", "ms", {"s&t": [(1, 1)]})], tmp_path / "e.svg")
    ET.parse(path)  # well-formed
    assert "a &lt;b&gt; &amp; c" in path.read_text()


def test_fleet_events_are_valid_envelopes() -> None:
    hb = {"labels": {"fleet": "x"}, "active_models": [], "spool_depth": 0, "role": "agent",
          "counters": {"received": 1, "processed": 1, "dead_letters": 0}}  # fmt: skip
    ev = EVENT_ADAPTER.validate_python(json.loads(envelope("heartbeat", "n-1", hb)))
    assert isinstance(ev, HeartbeatEvent) and ev.node_id == "n-1"
    ms = {"rollout_id": "r1", "model": "m", "version": "1.0.0", "phase": "shadow", "metrics": {}}
    ev2 = EVENT_ADAPTER.validate_python(json.loads(envelope("model_status", "n-1", ms)))
    assert isinstance(ev2, ModelStatusEvent) and ev2.data.phase == "shadow"
