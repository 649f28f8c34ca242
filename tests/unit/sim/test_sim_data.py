"""The sensor data generator: deterministic, physically coupled, faults labelled as injected."""

from __future__ import annotations

import numpy as np
import pytest

from edgecloud.sim.data import FAULTS, SENSORS, FleetGenerator, generate, roc_auc


def test_deterministic_by_seed() -> None:
    a, b, c = generate(4, 300, seed=5), generate(4, 300, seed=5), generate(4, 300, seed=6)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.fault, b.fault)
    assert not np.array_equal(a.values, c.values)


def test_normal_data_is_plausible_and_coupled() -> None:
    d = generate(10, 2000, seed=1, anomaly_rate=0.0)
    x, y, _ = d.flat()
    assert not y.any()
    temp, vib, pres, cur = x.T
    assert (
        40 < temp.mean() < 75
        and 0.2 < vib.mean() < 0.6
        and 2.5 < pres.mean() < 4
        and 5 < cur.mean() < 20
    )
    # the shared load drives current, temperature and vibration together
    assert np.corrcoef(cur, vib)[0, 1] > 0.5
    assert np.corrcoef(cur, pres)[0, 1] > 0.3
    # a daily cycle: 1440 one-minute steps, current swings with it
    per_device = d.values[0, :, 3]
    assert per_device.max() - per_device.min() > 4


def test_faults_injected_at_about_the_rate_with_each_kind() -> None:
    d = generate(40, 3000, seed=3, anomaly_rate=0.03)
    rate = d.labels.mean()
    assert 0.01 < rate < 0.06
    kinds = set(np.unique(d.fault)) - {0}
    assert kinds == set(range(1, len(FAULTS)))


def test_fault_effects() -> None:
    gen = FleetGenerator(200, seed=9, anomaly_rate=0.2)
    prev = None
    wear_vib, normal_vib, stuck_repeats, stuck_total = [], [], 0, 0
    for _ in range(400):
        x, kinds = gen.step()
        wear_vib.extend(x[kinds == 4, 1] / gen.v0[kinds == 4])
        normal_vib.extend(x[kinds == 0, 1] / gen.v0[kinds == 0])
        if prev is not None:
            for d in np.flatnonzero(kinds == 3):
                stuck_total += 1
                stuck_repeats += int(x[d, gen.fault_sensor[d]] == prev[d, gen.fault_sensor[d]])
        prev = x
    assert np.mean(wear_vib) > 1.3 * np.mean(normal_vib)
    assert stuck_total > 0 and stuck_repeats / stuck_total > 0.9


def test_bad_rate_refused() -> None:
    with pytest.raises(ValueError):
        FleetGenerator(1, anomaly_rate=0.7)


def test_roc_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)  # with ties
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    assert len(SENSORS) == 4


def test_shift_mix_ends_faults_and_starts_the_new_kind() -> None:
    gen = FleetGenerator(40, seed=3, anomaly_rate=0.3)
    before = np.array([gen.step()[1] for _ in range(200)])
    assert (before[-1] > 0).any()  # faults under way at the shift
    gen.shift_mix((0.0, 0.0, 1.0, 0.0), 0.9)
    after = np.array([gen.step()[1] for _ in range(100)])
    stuck = FAULTS.index("stuck")
    # what was under way ended: the first step after the shift holds new stuck faults only
    assert set(np.unique(after[0])) <= {0, stuck}
    assert set(np.unique(after)) == {0, stuck}
    # about one start per device every 60 / 0.9 steps: most of the 40 devices got one
    started = ((after[1:] == stuck) & (after[:-1] == 0)).any(axis=0) | (after[0] == stuck)
    assert started.sum() >= 25
    with pytest.raises(ValueError):
        gen.shift_mix((1.0, 0.0), 0.5)
    with pytest.raises(ValueError):
        gen.shift_mix((0.0, 0.0, 1.0, 0.0), 1.5)
