"""The benchmarks' shared arithmetic: pacing of the load generators and percentiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecloud.bench import common
from edgecloud.bench.common import cloud_env, paced, percentile


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(common.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(common.time, "sleep", fake.sleep)
    return fake


def test_paced_spaces_items_by_the_rate(clock: FakeClock) -> None:
    seen = []
    for item in paced(range(5), rate=100.0):
        seen.append((item, round(clock.now - 100.0, 6)))
    assert seen == [(0, 0.0), (1, 0.01), (2, 0.02), (3, 0.03), (4, 0.04)]


def test_paced_without_a_rate_never_sleeps(clock: FakeClock) -> None:
    assert list(paced("abc", rate=None)) == ["a", "b", "c"]
    assert list(paced("abc", rate=0)) == ["a", "b", "c"]
    assert clock.sleeps == []


def test_paced_does_not_sleep_when_behind_or_within_the_slack(clock: FakeClock) -> None:
    out = []
    for item in paced(range(4), rate=1000.0, slack_s=0.0015):
        out.append(item)
        clock.now += 0.0005  # the work per item: half the interval
    assert out == [0, 1, 2, 3]
    assert clock.sleeps == []  # never more than 1.5 ms ahead
    clock.sleeps.clear()
    for _ in paced(range(3), rate=10.0):
        clock.now += 0.5  # slower than the rate: behind schedule, no sleeping
    assert clock.sleeps == []


def test_percentile_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


@pytest.mark.parametrize("n", [200, 1000, 3000, 10_000])
def test_percentile_exact_ranks_for_other_sizes(n: int) -> None:
    samples = [float(x) for x in range(n, 0, -1)]  # any order
    assert percentile(samples, 99) == n * 99 / 100
    assert percentile(samples, 50) == n / 2
    assert percentile(samples, 0) == 1.0


def test_cloud_env_drops_the_callers_edgecloud_settings_and_sets_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGECLOUD_API_TOKEN", "from-the-caller")
    monkeypatch.setenv("EDGECLOUD_ROLLOUT_TICK_S", "9")
    monkeypatch.setenv("KEEP_ME", "1")
    env = cloud_env("postgresql+psycopg://x/db", Path("/r"), 0.2, EDGECLOUD_API_DB_POOL="7")
    assert "EDGECLOUD_API_TOKEN" not in env
    assert env["KEEP_ME"] == "1"
    assert {k: v for k, v in env.items() if k.startswith("EDGECLOUD_")} == {
        "EDGECLOUD_DATABASE_URL": "postgresql+psycopg://x/db",
        "EDGECLOUD_REGISTRY_DIR": "/r",
        "EDGECLOUD_ROLLOUT_TICK_S": "0.2",
        "EDGECLOUD_LOG_LEVEL": "WARNING",
        "EDGECLOUD_API_DB_POOL": "7",
    }
