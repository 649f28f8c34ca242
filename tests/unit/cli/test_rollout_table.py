"""``rollout status`` (and ``--watch``): the detail column stays readable in a narrow terminal."""

from __future__ import annotations

from rich.console import Console

from edgecloud.cli.rollout import _table

DETAIL = "shadow gate anomaly_rate: 0.25 (limit 0.1; candidate alone: the active model failed"


def rollout() -> dict[str, object]:
    node = {
        "wave": 0, "node_id": "edge-a", "status": "failed", "detail": DETAIL,
        "metrics": {"agreement": 0.97, "score_drift": 0.01, "latency_p99_ms": 3.2},
    }  # fmt: skip
    return {
        "id": "r-1", "model": "tensor-image", "version": "1.0.0", "state": "running",
        "current_wave": 0, "waves": [20, 100], "detail": "wave 1 failed: " + DETAIL,
        "nodes": [node, {**node, "node_id": "edge-b", "detail": None}],
    }  # fmt: skip


def render(width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(_table(rollout()))
    return console.export_text().splitlines()


def test_each_node_is_one_table_line_and_its_detail_reads_whole_at_80_columns() -> None:
    lines = render(80)
    rows = [line for line in lines if line.startswith("│") and "edge-" in line]
    assert [("edge-a" in r, "failed" in r, "0.970" in r) for r in rows] == [
        (True, True, True),
        (False, True, True),
    ]
    assert all(len(line) <= 80 for line in lines)
    text = " ".join(
        line.strip() for line in lines if not line.startswith(("│", "┃", "┏", "┡", "└"))
    )
    assert f"edge-a: {DETAIL}" in text  # wrapped at most at the terminal's width, in full
    assert f"rollout: wave 1 failed: {DETAIL}" in text
    assert "edge-b:" not in text  # no detail, no line
    prose = [w for w in lines if w.strip() and not w.startswith(("│", "┃", "┏", "┡", "└"))]
    assert all(len(w.split()) >= 2 for w in prose)  # no line of one word


def test_wide_terminal_puts_each_detail_on_one_line() -> None:
    lines = render(200)
    assert f"edge-a: {DETAIL}" in lines
