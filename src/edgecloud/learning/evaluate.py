"""Scoring bundles on a held-out window and the figures of the comparison.

A bundle is scored through the edge agent's own inference path (``load_bundle`` then
``infer_batch``, signature checked), readings fed in time order so that a stateful model keeps
its per-device state as on an agent. The figures: precision, recall, F1 (at the bundle's own
decision), ROC AUC (of the score), false positives per device-hour (wall-clock time of the
held-out readings), recall per fault kind where ground truth names it, the confusion counts,
and the ROC curve; ``svg`` draws both versions' curves and counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.learning.dataset import Window
from edgecloud.sim.data import SENSORS, roc_auc

Array = np.ndarray[Any, Any]
BATCH = 256


def score(folder: Path, keys: Mapping[str, Ed25519PublicKey], w: Window) -> tuple[Array, Array]:
    """(scores, anomaly flags) of the bundle in ``folder`` on the window's readings."""
    backend = load_bundle(folder, trusted_keys=keys, settings=InferenceSettings())
    order = np.lexsort((w.seq, w.ts))
    scores, flags = np.zeros(len(w)), np.zeros(len(w), bool)
    try:
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            batch = [
                Reading(device_id=w.device_id[i], seq=int(w.seq[i]), ts=float(w.ts[i]),
                        values=dict(zip(SENSORS, map(float, w.values[i]), strict=True)))
                for i in idx
            ]  # fmt: skip
            for i, out in zip(idx, backend.infer_batch(batch), strict=True):
                if isinstance(out, InferenceResult):
                    scores[i] = out.score if out.score is not None else float(out.anomaly)
                    flags[i] = out.anomaly
    finally:
        backend.close()
    return scores, flags


def roc_points(scores: Array, labels: Array, n: int = 101) -> list[tuple[float, float]]:
    """(false-positive rate, true-positive rate) at ``n`` score thresholds."""
    pos, neg = max(int(labels.sum()), 1), max(int((~labels).sum()), 1)
    points = [(1.0, 1.0)]
    for q in np.linspace(0.0, 1.0, n):
        t = float(np.quantile(scores, q))
        hit = scores > t
        points.append((float((hit & ~labels).sum() / neg), float((hit & labels).sum() / pos)))
    points.append((0.0, 0.0))
    return sorted(set(points))


def metrics(
    scores: Array, flags: Array, w: Window, labels: Array, fault_kind: list[str | None]
) -> dict[str, Any]:
    """The figures over the labelled rows (``labels`` 0 or 1; -1 rows are left out)."""
    keep = labels >= 0
    s, f, y = scores[keep], flags[keep], labels[keep] == 1
    tp, fp = int((f & y).sum()), int((f & ~y).sum())
    fn, tn = int((~f & y).sum()), int((~f & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    hours = 0.0
    for dev in set(w.device_id):
        t = w.ts[[i for i, d in enumerate(w.device_id) if d == dev]]
        hours += (float(t.max()) - float(t.min())) / 3600.0
    by_kind: dict[str, dict[str, float]] = {}
    kinds = [k for k, on in zip(fault_kind, keep, strict=True) if on]
    for kind in sorted({k for k in kinds if k}):
        m = np.array([k == kind for k in kinds]) & y
        by_kind[kind] = {"readings": int(m.sum()), "recall": round(float(f[m].mean()), 4)}
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "auc": round(roc_auc(s, y), 4) if y.any() and (~y).any() else None,
        "fp_per_device_hour": round(fp / hours, 2) if hours > 0 else None,
        "device_hours": round(hours, 4),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "by_fault_kind": by_kind,
        "roc": [[round(a, 4), round(b, 4)] for a, b in roc_points(s, y)],
    }


def svg(report: dict[str, Any]) -> str:
    """ROC curves of both versions and their confusion counts, as a small SVG."""
    w, h, pad = 560, 300, 40
    side = h - 2 * pad
    colours = {"active": "#888", "candidate": "#1f77b4"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
        f'<rect x="{pad}" y="{pad}" width="{side}" height="{side}" fill="none" stroke="#ccc"/>',
        f'<line x1="{pad}" y1="{pad + side}" x2="{pad + side}" y2="{pad}" stroke="#eee"/>',
        f'<text x="{pad}" y="{h - 10}">false-positive rate</text>',
        f'<text x="6" y="{pad - 10}">ROC, held-out window: true-positive rate</text>',
    ]
    y_text = pad + 10
    for role in ("active", "candidate"):
        entry = report.get(role)
        if not entry:
            continue
        m = entry["metrics"]
        pts = " ".join(f"{pad + fx * side:.1f},{pad + side - ty * side:.1f}" for fx, ty in m["roc"])
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colours[role]}" stroke-width="2"/>'
        )
        c = m["confusion"]
        lines = [
            f"{role} {escape(str(entry['version']))}",
            f"AUC {m['auc']}  F1 {m['f1']}",
            f"precision {m['precision']}  recall {m['recall']}",
            f"TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}",
            f"FP per device-hour {m['fp_per_device_hour']}",
        ]
        for i, text in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(
                f'<text x="{2 * pad + side}" y="{y_text}" fill="{colours[role]}"{weight}>'
                f"{escape(text)}</text>"
            )
            y_text += 16
        y_text += 12
    verdict = "accepted" if report.get("accepted") else "refused"
    parts.append(f'<text x="{2 * pad + side}" y="{y_text + 4}">{verdict}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
