"""The training set, read from the cloud database by one documented query.

Every reading of the window, each with its label from every source (a source's label is its
own row in ``labels``, so the three stay apart)::

    SELECT r.event_id, r.device_id, r.seq, r.ts, r.values, r.anomaly,
           lo.anomalous AS operator, le.anomalous AS escalation,
           ls.anomalous AS simulator, ls.fault_kind
    FROM readings r
    LEFT JOIN labels lo ON lo.event_id = r.event_id AND lo.source = 'operator'
    LEFT JOIN labels le ON le.event_id = r.event_id AND le.source = 'escalation'
    LEFT JOIN labels ls ON ls.event_id = r.event_id AND ls.source = 'simulator'
    WHERE r.ts >= :since AND r.ts < :until
    ORDER BY r.device_id, r.seq

A reading's label is the operator's if there is one, else the escalation's, else (only when
the retrain asks for ground truth) the simulator's. The window splits by time: the first
``1 - holdout`` of it trains, the rest is held out for the evaluation. The trainers here are
unsupervised (they learn normal operation), so they fit on the training part's readings that
are labelled normal, plus the unlabelled ones the edge model did not flag; labelled anomalies
are counted (and must exist: a window with one class only is refused), and unlabelled flagged
readings are left out (nobody confirmed them either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from edgecloud.cloud import db
from edgecloud.cloud.labels.tables import Label
from edgecloud.core.errors import ValidationFailed
from edgecloud.sim.data import SENSORS

Array = np.ndarray[Any, Any]


class BadWindow(ValidationFailed):
    """The window cannot train or evaluate a model (empty, one class, too few rows)."""


@dataclass
class Window:
    """The readings of one window, in (device_id, seq) order, with their labels per source
    (-1 none, 0 normal, 1 anomalous)."""

    device_id: list[str]
    seq: Array
    ts: Array  # epoch seconds
    values: Array  # [n, 4] in SENSORS order
    flagged: Array  # the edge model's anomaly flag
    operator: Array
    escalation: Array
    simulator: Array
    fault_kind: list[str | None]

    def __len__(self) -> int:
        return len(self.device_id)

    def label(self, ground_truth: bool) -> Array:
        out = np.where(self.operator >= 0, self.operator, self.escalation)
        if ground_truth:
            out = np.where(out >= 0, out, self.simulator)
        return out

    def take(self, mask: Array) -> Window:
        idx = np.flatnonzero(mask)
        return Window(
            [self.device_id[i] for i in idx], self.seq[idx], self.ts[idx], self.values[idx],
            self.flagged[idx], self.operator[idx], self.escalation[idx], self.simulator[idx],
            [self.fault_kind[i] for i in idx],
        )  # fmt: skip


def _tri(v: bool | None) -> int:
    return -1 if v is None else int(bool(v))


def query(since: datetime, until: datetime) -> sa.Select[Any]:
    r, lab = db.table_of(db.Reading), db.table_of(Label)
    lo, le, ls = lab.alias("lo"), lab.alias("le"), lab.alias("ls")

    def on(alias: Any, source: str) -> sa.ColumnElement[bool]:
        return sa.and_(alias.c.event_id == r.c.event_id, alias.c.source == source)

    joined = (
        r.outerjoin(lo, on(lo, "operator"))
        .outerjoin(le, on(le, "escalation"))
        .outerjoin(ls, on(ls, "simulator"))
    )
    return (
        sa.select(
            r.c.device_id,
            r.c.seq,
            r.c.ts,
            r.c["values"],
            r.c.anomaly,
            lo.c.anomalous.label("operator"),
            le.c.anomalous.label("escalation"),
            ls.c.anomalous.label("simulator"),
            ls.c.fault_kind,
        )
        .select_from(joined)
        .where(r.c.ts >= since, r.c.ts < until)
        .order_by(r.c.device_id, r.c.seq)
    )


def load(engine: Engine, since: datetime, until: datetime) -> Window:
    """The window's readings that carry all four sensors (others cannot be scored)."""
    dev: list[str] = []
    seq, ts, flagged, op, esc, sim = [], [], [], [], [], []
    values: list[list[float]] = []
    kinds: list[str | None] = []
    with engine.connect() as conn:
        for row in conn.execute(query(since, until)):
            vals = row[3] or {}
            try:
                x = [float(vals[name]) for name in SENSORS]
            except (KeyError, TypeError, ValueError):
                continue
            dev.append(row[0])
            seq.append(int(row[1]))
            ts.append(row[2].timestamp())
            values.append(x)
            flagged.append(bool(row[4]))
            op.append(_tri(row[5]))
            esc.append(_tri(row[6]))
            sim.append(_tri(row[7]))
            kinds.append(row[8])
    return Window(
        dev, np.asarray(seq, np.int64), np.asarray(ts, np.float64),
        np.asarray(values, np.float64).reshape(-1, 4), np.asarray(flagged, bool),
        np.asarray(op, np.int8), np.asarray(esc, np.int8), np.asarray(sim, np.int8), kinds,
    )  # fmt: skip


@dataclass
class Split:
    train: Window
    held_out: Window
    cut: float  # epoch seconds: train < cut <= held_out
    fit_mask: Array  # train rows the trainer fits on
    counts: dict[str, Any]


def split(window: Window, holdout: float, ground_truth: bool, evaluate_truth: bool) -> Split:
    """Split by time and count what each part holds; refuses a window that cannot work."""
    if len(window) == 0:
        raise BadWindow("empty_window", "no readings with all four sensors in that window")
    t0, t1 = float(window.ts.min()), float(window.ts.max())
    cut = t0 + (t1 - t0) * (1.0 - holdout)
    train, held = window.take(window.ts < cut), window.take(window.ts >= cut)
    label = train.label(ground_truth)
    fit = (label == 0) | ((label < 0) & ~train.flagged)
    all_labels = window.label(ground_truth or evaluate_truth)  # what training or scoring sees
    if not (all_labels == 1).any() or not ((all_labels == 0) | (all_labels < 0)).any():
        raise BadWindow(
            "one_class",
            "the window holds one class only: label some anomalies (operator feedback, "
            "escalations) or retrain with ground truth",
        )
    eval_label = held.label(ground_truth or evaluate_truth)
    if not (eval_label == 1).any() or not (eval_label == 0).any():
        raise BadWindow(
            "one_class_held_out",
            f"the held-out window ({len(held)} readings) has no labelled "
            + ("anomalies" if not (eval_label == 1).any() else "normal readings"),
        )
    if int(fit.sum()) < 50:
        raise BadWindow("too_few_rows", f"{int(fit.sum())} normal readings to train on (< 50)")
    counts = {
        "rows": len(window),
        "train": {
            "rows": len(train),
            "fit": int(fit.sum()),
            "normal_labelled": int((label == 0).sum()),
            "normal_unlabelled": int(((label < 0) & ~train.flagged).sum()),
            "anomalous": int((label == 1).sum()),
            "flagged_unlabelled_left_out": int(((label < 0) & train.flagged).sum()),
        },
        "held_out": {
            "rows": len(held),
            "anomalous": int((eval_label == 1).sum()),
            "normal": int((eval_label == 0).sum()),
            "unlabelled": int((eval_label < 0).sum()),
        },
        "labels_by_source": {
            name: {"anomalous": int((arr == 1).sum()), "normal": int((arr == 0).sum())}
            for name, arr in (
                ("operator", window.operator),
                ("escalation", window.escalation),
                ("simulator", window.simulator),
            )
        },
        "ground_truth_in_training": ground_truth,
    }
    return Split(train, held, cut, fit, counts)


def device_series(w: Window, mask: Array) -> list[Array]:
    """Per device, the masked rows' values in seq order (the window is sorted so)."""
    out: list[Array] = []
    start = 0
    for i in range(1, len(w) + 1):
        if i == len(w) or w.device_id[i] != w.device_id[start]:
            rows = np.arange(start, i)
            out.append(w.values[rows[mask[rows]]])
            start = i
    return out
