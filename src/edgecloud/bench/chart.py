"""Charts of the benchmarks as small SVG files, written by the project (no plotting library).

One figure is a row of panels; a panel plots named series of (x, y) points as lines with
markers, optionally a dashed goal line. ``bench_chart`` draws any CONTRACT section 8 result
(rate and p99 per run: ours, the raw limit, the peer where there is one); ``fleet_chart`` draws
the fleet's growth curve (poll p99, heartbeat lag p99, rollout time against fleet size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from edgecloud.bench.common import BenchResult

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 340, 240, 58, 14, 34, 52
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclass
class Panel:
    title: str
    unit: str
    series: dict[str, list[tuple[float, float]]]
    x_label: str = ""
    goal: float | None = None
    notes: list[str] = field(default_factory=list)


def _ticks(hi: float) -> list[float]:
    if hi <= 0:
        return [0.0, 1.0]
    step = 10 ** len(str(int(hi))) / 10 if hi >= 1 else 0.1
    while hi / step > 6:
        step *= 2
    return [i * step for i in range(int(hi / step) + 2)]


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def _panel(p: Panel, x0: float) -> list[str]:
    pts = [pt for s in p.series.values() for pt in s]
    xs = sorted({x for x, _ in pts}) or [0.0, 1.0]
    y_hi = max([y for _, y in pts] + [p.goal or 0.0, 1e-9])
    ticks = _ticks(y_hi * 1.05)
    y_top = ticks[-1]
    x_lo, x_hi = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(x: float) -> float:
        return x0 + PAD_L + (x - x_lo) / (x_hi - x_lo) * iw

    def sy(y: float) -> float:
        return PAD_T + ih - y / y_top * ih

    out = [
        f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">'
        f"{escape(p.title)}</text>",
        f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{iw}" height="{ih}" '
        'fill="none" stroke="#999"/>',
    ]
    for t in ticks:
        out.append(
            f'<text x="{x0 + PAD_L - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{_num(t)}</text>'
            f'<line x1="{x0 + PAD_L}" x2="{x0 + PAD_L + iw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            'stroke="#eee"/>'
        )
    for x in xs:
        out.append(
            f'<text x="{sx(x):.1f}" y="{PAD_T + ih + 14}" text-anchor="middle">{_num(x)}</text>'
        )
    out.append(
        f'<text x="{x0 + PAD_L + iw / 2}" y="{PAD_T + ih + 28}" text-anchor="middle">'
        f"{escape(p.x_label)}</text>"
        f'<text x="{x0 + 12}" y="{PAD_T + ih / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 12} {PAD_T + ih / 2})">{escape(p.unit)}</text>'
    )
    if p.goal is not None:
        out.append(
            f'<line x1="{x0 + PAD_L}" x2="{x0 + PAD_L + iw}" y1="{sy(p.goal):.1f}" '
            f'y2="{sy(p.goal):.1f}" stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{x0 + PAD_L + iw - 2}" y="{sy(p.goal) - 3:.1f}" text-anchor="end">'
            f"goal {_num(p.goal)}</text>"
        )
    for i, (name, s) in enumerate(p.series.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in s]
        ly = PAD_T + ih + 42
        out.append(
            f'<text x="{x0 + PAD_L + i * 90}" y="{ly}" fill="{colour}">{escape(name)}</text>'
        )
    return out


def write_svg(title: str, panels: list[Panel], path: Path) -> Path:
    width = W * len(panels)
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 20}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="6" y="{H + 14}" fill="#555">{escape(title)}</text>',
    ]
    for i, p in enumerate(panels):
        body += _panel(p, i * W)
    body.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body) + "\n")
    return path


def _per_run(result: BenchResult) -> list[dict[str, Any]]:
    runs = result.extra.get("per_run")
    return runs if isinstance(runs, list) and runs else [result.model_dump(exclude={"extra"})]


def bench_chart(result: BenchResult, path: Path) -> Path:
    """Rate and p99 per run: ours, the raw limit, and the peer where the result has one."""
    runs = _per_run(result)
    rate = {"ours": [(i + 1.0, float(r["rate_per_s"])) for i, r in enumerate(runs)]}
    p99 = {"ours": [(i + 1.0, float(r["p99_ms"])) for i, r in enumerate(runs)]}
    if any(r.get("limit_rate_per_s") for r in runs):
        rate["limit"] = [(i + 1.0, float(r["limit_rate_per_s"])) for i, r in enumerate(runs)]
    peers = result.extra.get("peer") or {}
    for name, block in peers.items():
        if name != "edgecloud" and isinstance(block, dict) and block.get("per_run"):
            rows = block["per_run"]
            rate[name] = [(i + 1.0, float(r["rate_per_s"])) for i, r in enumerate(rows)]
            p99[name] = [(i + 1.0, float(r["p99_ms"])) for i, r in enumerate(rows)]
    return write_svg(
        f"edgecloud bench {result.name}",
        [
            Panel(f"{result.name}: rate per run", "per second", rate, "run"),
            Panel(f"{result.name}: p99 per run", "ms", p99, "run"),
        ],
        path,
    )


def fleet_chart(result: BenchResult, path: Path) -> Path:
    """The fleet's growth curve against its size."""
    rows = result.extra.get("sizes") or []

    def curve(key: str, scale: float = 1.0) -> list[tuple[float, float]]:
        return [(float(r["nodes"]), float(r[key]) * scale) for r in rows]

    return write_svg(
        "edgecloud bench fleet: one API process, one worker",
        [
            Panel(
                "desired-state poll",
                "ms",
                {"p99": curve("desired_poll_p99_ms"), "p50": curve("desired_poll_p50_ms")},
                "nodes",
                goal=50.0,
            ),
            Panel("heartbeat ingest lag", "ms", {"p99": curve("heartbeat_lag_p99_ms")}, "nodes"),
            Panel("rollout to all active", "s", {"rollout": curve("rollout_s")}, "nodes"),
            Panel(
                "CPU (% of one core)",
                "%",
                {"API": curve("api_cpu_pct"), "worker": curve("worker_cpu_pct")},
                "nodes",
            ),
        ],
        path,
    )
