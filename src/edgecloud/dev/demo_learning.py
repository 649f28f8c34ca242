"""The learning loop of ``edgecloud dev up --demo`` (docs/learning.md), after the 1.1.0 rollout:

1. the simulator's fault mix shifts towards stuck sensors (``FleetGenerator.shift_mix``),
   which the pointwise 1.1.0 cannot see;
2. once the cloud holds that phase's readings, the demo posts the simulator's ground truth
   (``POST /api/v1/labels/ground-truth``: for scoring only, never training) and a few operator
   labels through the feedback route (flagged readings confirmed, stuck ones marked missed);
3. the cloud retrains ``sensor-anomaly`` with the temporal trainer on that window
   (``POST /api/v1/models/sensor-anomaly/retrain``), evaluates it against 1.1.0 on the held-out
   end of the window, signs and registers it when it is better by the margin;
4. the new version rolls out in waves with shadow gates, and the summary prints both
   versions' recall and false-positive rate on the same held-out window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edgecloud.core.events import reading_event_id
from edgecloud.sim.data import FAULTS

Echo = Callable[[str], None]
# weights of spike, drift, stuck, bearing_wear after the shift (uniform before it), and the
# rate faults start at then: about one new fault per device every 67 steps (0.3 before), so that
# even a short or slowed phase holds stuck sensors in its held-out end. The faults under way end
# at the shift: a window full of the slow drift and bearing wear from before it, unflagged in
# their first steps, would teach the candidate that they are normal.
STUCK_HEAVY = (0.05, 0.05, 0.8, 0.1)
SHIFT_RATE = 0.9


@dataclass
class Truth:
    """Each published reading's fault kind, recorded by the simulator's ``on_step``."""

    rows: list[tuple[float, str, int, int]] = field(default_factory=list)  # (t, device, seq, k)
    shift: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_step(self, gen: Any, ids: list[str], seq: int, kinds: Any) -> None:
        now = time.time()
        with self.lock:
            self.rows.extend((now, d, seq, int(k)) for d, k in zip(ids, kinds, strict=True))
        if self.shift.is_set() and gen.fault_weights is None:
            gen.shift_mix(STUCK_HEAVY, SHIFT_RATE)

    def between(self, t0: float, t1: float) -> list[tuple[float, str, int, int]]:
        with self.lock:
            return [r for r in self.rows if t0 <= r[0] < t1]


def _post_truth(api: Any, rows: list[tuple[float, str, int, int]]) -> int:
    written = 0
    for i in range(0, len(rows), 20_000):
        items = [
            {"device_id": d, "seq": s, "fault": FAULTS[k]} for _, d, s, k in rows[i : i + 20_000]
        ]
        res = api.call("POST", "/api/v1/labels/ground-truth", "operate", json={"items": items})
        res.raise_for_status()
        written += int(res.json()["written"])
    return written


def _feedback(api: Any, rows: list[tuple[float, str, int, int]], since: str, prefix: str) -> int:
    """A few operator labels: three flagged readings confirmed, three stuck ones missed."""
    sent = 0
    flagged = [
        a for a in api.pages("/api/v1/anomalies", since=since, limit=200)
        if a["device_id"].startswith(prefix + "-")
    ][:3]  # fmt: skip
    for a in flagged:
        res = api.call("POST", f"/api/v1/anomalies/{a['event_id']}/feedback", "operate",
                       json={"verdict": "true_positive", "note": "demo: confirmed"})  # fmt: skip
        sent += res.status_code == 201
    stuck = [r for r in rows if r[3] == FAULTS.index("stuck")][:3]
    for _, dev, seq, _k in stuck:
        eid = reading_event_id(dev, seq)
        res = api.call("POST", f"/api/v1/anomalies/{eid}/feedback", "operate",
                       json={"verdict": "missed", "note": "demo: sensor stuck"})  # fmt: skip
        sent += res.status_code == 201
    return sent


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    m = entry["metrics"]
    stuck = (m.get("by_fault_kind") or {}).get("stuck", {}).get("recall")
    return {"version": entry["version"], "recall": m["recall"], "precision": m["precision"],
            "f1": m["f1"], "auc": m["auc"], "fp_per_device_hour": m["fp_per_device_hour"],
            "false_positive_rate": round(m["confusion"]["fp"] / max(1, m["confusion"]["fp"]
                                         + m["confusion"]["tn"]), 4),
            "stuck_recall": stuck}  # fmt: skip


def run_loop(
    api: Any, truth: Truth, prefix: str, phase_s: float, drained: Callable[[float], bool],
    echo: Echo,
) -> dict[str, Any]:  # fmt: skip
    """Steps 1-3; returns the summary's ``learning`` part (``accepted``, figures, version)."""
    truth.shift.set()
    t0 = time.time()
    since = datetime.fromtimestamp(t0, UTC).isoformat()
    echo(f"  learning: fault mix shifts to stuck sensors for {phase_s:g} s")
    time.sleep(phase_s)
    t1 = time.time()
    until = datetime.fromtimestamp(t1, UTC).isoformat()
    if not drained(t1):
        echo("  learning: the cloud does not hold every reading of the window yet")
    rows = truth.between(t0, t1)
    written = _post_truth(api, rows)
    sent = _feedback(api, rows, since, prefix)
    echo(f"  learning: {written} ground-truth labels (scoring only), {sent} operator labels")
    body = {"since": since, "until": until, "trainer": "temporal",
            "evaluate_with_ground_truth": True, "holdout": 0.3}  # fmt: skip
    started = time.monotonic()
    res = api.call("POST", "/api/v1/models/sensor-anomaly/retrain", "operate", json=body,
                   timeout=300.0)  # fmt: skip
    out = res.json()
    if res.status_code not in (201, 409) or "report" not in out:
        echo(f"  learning: retrain failed ({res.status_code}): {res.text[:300]}")
        return {"accepted": False, "error": f"{res.status_code}: {res.text[:300]}"}
    report = out["report"]
    result = {
        "accepted": bool(out["accepted"]),
        "version": out["version"],
        "parent_version": out["parent_version"],
        "evaluation_id": out["evaluation_id"],
        "window": {"since": since, "until": until, "held_out_from": report["held_out_from"]},
        "ground_truth_labels": written,
        "operator_labels": sent,
        "training": report["training"]["train"],
        "held_out": report["training"]["held_out"],
        "metric": report["metric"],
        "gain": report["gain"],
        "min_gain": report["min_gain"],
        "active": _figures(report["active"]),
        "candidate": _figures(report["candidate"]),
        "retrain_seconds": round(time.monotonic() - started, 1),
    }
    verdict = "accepted" if out["accepted"] else "REFUSED"
    echo(
        f"  learning: sensor-anomaly:{out['version']} {verdict} ({report['metric']} "
        f"{report['gain']:+.3f}, needed {report['min_gain']}) in {result['retrain_seconds']} s"
    )
    return result
