"""Realistic multi-sensor telemetry with injected faults and ground truth (pure numpy).

Every device has its own baseline. A shared physical story ties the sensors together: the
machine's load follows a daily cycle plus slow random variation; current rises with load,
temperature follows load and the ambient day, vibration scales with load, pressure a little.
On top: a slow temperature drift per device, sensor noise, and injected faults, each labelled:

- ``spike``: one sensor jumps for 1-3 steps;
- ``drift``: temperature (or pressure) walks away from the physics over 30-120 steps;
- ``stuck``: one sensor repeats its last value for 20-100 steps;
- ``bearing_wear``: vibration climbs to 2-4x (and temperature a little) over 50-200 steps.

``FleetGenerator.step()`` advances all devices one step (the simulator calls it per tick);
``generate`` stacks steps into a dataset. Same seed, same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SENSORS = ("temperature", "vibration_rms", "pressure", "current")
FAULTS = ("none", "spike", "drift", "stuck", "bearing_wear")
_DURATION = {1: (1, 4), 2: (30, 121), 3: (20, 101), 4: (50, 201)}  # fault -> [lo, hi) steps
_MEAN_DURATION = 60.0
DAY_S = 86_400.0
Array = np.ndarray[Any, Any]


@dataclass
class Dataset:
    values: Array  # [devices, steps, 4] float64, columns in SENSORS order
    fault: Array  # [devices, steps] int8, index into FAULTS (0: normal)

    @property
    def labels(self) -> Array:
        return self.fault > 0

    def flat(self) -> tuple[Array, Array, Array]:
        """(values [n,4], labels [n], fault kinds [n]) over all devices and steps."""
        n = self.values.shape[0] * self.values.shape[1]
        return self.values.reshape(n, 4), self.labels.reshape(n), self.fault.reshape(n)


class FleetGenerator:
    """``n_devices`` machines stepped together; ``dt_s`` simulated seconds per step."""

    def __init__(
        self, n_devices: int, *, seed: int = 0, anomaly_rate: float = 0.02, dt_s: float = 60.0
    ) -> None:
        if not 0.0 <= anomaly_rate < 0.5:
            raise ValueError("anomaly_rate must be in [0, 0.5)")
        self.n, self.dt_s, self.anomaly_rate = n_devices, dt_s, anomaly_rate
        self.rng = rng = np.random.default_rng(seed)
        self.t = rng.uniform(0, DAY_S)  # start somewhere in the day
        self.phase = rng.uniform(-0.5, 0.5, n_devices)
        self.t0 = rng.normal(55.0, 2.0, n_devices)  # temperature baseline, C
        self.v0 = rng.normal(0.40, 0.03, n_devices)  # vibration baseline, mm/s RMS
        self.p0 = rng.normal(3.0, 0.1, n_devices)  # pressure baseline, bar
        self.i0 = rng.normal(12.0, 0.6, n_devices)  # current at full load, A
        self.load_noise = np.zeros(n_devices)
        self.drift = np.zeros(n_devices)
        self.fault = np.zeros(n_devices, np.int8)
        self.fault_left = np.zeros(n_devices, np.int32)
        self.fault_age = np.zeros(n_devices, np.int32)
        self.fault_len = np.ones(n_devices, np.int32)
        self.fault_sensor = np.zeros(n_devices, np.int8)
        self.fault_size = np.ones(n_devices)
        self.last = np.zeros((n_devices, 4))
        # weights of the four fault kinds (FAULTS[1:]) when a fault starts; None: uniform. The
        # demo changes the mix mid-run (a fleet whose faults shift towards stuck sensors).
        self.fault_weights: tuple[float, ...] | None = None

    def shift_mix(self, weights: tuple[float, ...], anomaly_rate: float) -> None:
        """From the next step on, faults start at ``anomaly_rate`` (per mean fault duration,
        as in the constructor; here up to 1) with these weights of FAULTS[1:]; faults under
        way end now (the fleet's old faults were repaired when the new mix began)."""
        if len(weights) != len(FAULTS) - 1 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights must be {len(FAULTS) - 1} non-negative numbers")
        if not 0.0 <= anomaly_rate <= 1.0:
            raise ValueError("anomaly_rate must be in [0, 1]")
        self.fault_weights, self.anomaly_rate = tuple(weights), anomaly_rate
        self.fault[:], self.fault_left[:] = 0, 0

    def _start_faults(self) -> None:
        idle = self.fault_left == 0
        p = self.anomaly_rate / _MEAN_DURATION
        start = idle & (self.rng.random(self.n) < p)
        for d in np.flatnonzero(start):
            if self.fault_weights is None:
                kind = int(self.rng.integers(1, len(FAULTS)))
            else:
                w = np.asarray(self.fault_weights, np.float64)
                kind = 1 + int(self.rng.choice(len(FAULTS) - 1, p=w / w.sum()))
            lo, hi = _DURATION[kind]
            self.fault[d], self.fault_left[d] = kind, int(self.rng.integers(lo, hi))
            self.fault_len[d], self.fault_age[d] = self.fault_left[d], 0
            self.fault_sensor[d] = int(self.rng.integers(0, 4)) if kind in (1, 3) else 0
            if kind == 2:
                self.fault_sensor[d] = int(self.rng.choice([0, 2]))
            self.fault_size[d] = self.rng.uniform(2.0, 4.0)

    def step(self) -> tuple[Array, Array]:
        """Values [devices, 4] and fault kinds [devices] of the next step."""
        rng, n = self.rng, self.n
        self.t += self.dt_s
        day = 2 * np.pi * self.t / DAY_S
        self.load_noise = 0.97 * self.load_noise + rng.normal(0, 0.03, n)
        load = np.clip(0.6 + 0.3 * np.sin(day + self.phase) + self.load_noise, 0.05, 1.2)
        self.drift += rng.normal(0, 0.002, n)
        ambient = 3.0 * np.sin(day - 1.0)
        x = np.empty((n, 4))
        x[:, 0] = self.t0 + 8.0 * load + ambient + self.drift + rng.normal(0, 0.25, n)
        x[:, 1] = self.v0 * (0.5 + 0.8 * load) * np.exp(rng.normal(0, 0.04, n))
        x[:, 2] = self.p0 + 0.5 * load + rng.normal(0, 0.03, n)
        x[:, 3] = self.i0 * (0.3 + load) + rng.normal(0, 0.12, n)

        self._start_faults()
        active = self.fault_left > 0
        kinds = np.where(active, self.fault, 0).astype(np.int8)
        progress = (self.fault_age + 1) / np.maximum(self.fault_len, 1)
        scale = np.array([6.0, 0.5, 0.8, 5.0])  # a "big" excursion per sensor
        for d in np.flatnonzero(active):
            kind, s = int(kinds[d]), int(self.fault_sensor[d])
            if kind == 1:  # spike
                x[d, s] += self.fault_size[d] * scale[s] * rng.choice([-1.0, 1.0])
            elif kind == 2:  # drift
                x[d, s] += progress[d] * self.fault_size[d] * scale[s]
            elif kind == 3:  # stuck
                x[d, s] = self.last[d, s]
            else:  # bearing wear
                x[d, 1] *= 1.0 + progress[d] * self.fault_size[d] * 0.75
                x[d, 0] += progress[d] * 2.0
        self.fault_age[active] += 1
        self.fault_left[active] -= 1
        self.fault[self.fault_left == 0] = 0
        self.last = x.copy()  # a stuck sensor's value is already its last one
        return x, kinds


def generate(
    n_devices: int, n_steps: int, *, seed: int = 0, anomaly_rate: float = 0.02, dt_s: float = 60.0
) -> Dataset:
    gen = FleetGenerator(n_devices, seed=seed, anomaly_rate=anomaly_rate, dt_s=dt_s)
    values = np.empty((n_devices, n_steps, 4))
    fault = np.empty((n_devices, n_steps), np.int8)
    for t in range(n_steps):
        values[:, t], fault[:, t] = gen.step()
    return Dataset(values, fault)


def roc_auc(scores: Array, labels: Array) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError("roc_auc needs both classes")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
