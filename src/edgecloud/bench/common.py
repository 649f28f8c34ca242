"""What every ``edgecloud bench`` writes (CONTRACT section 8), and the arithmetic for it."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


def paced(items: Iterable[T], rate: float | None, slack_s: float = 0.001) -> Iterator[T]:
    """``items`` at ``rate`` a second from the first one (all at once when ``rate`` is 0 or None);
    it sleeps only when more than ``slack_s`` ahead of schedule."""
    t0 = time.monotonic()
    for i, item in enumerate(items):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > slack_s:
                time.sleep(delay)
        yield item


def cloud_env(database_url: str, registry_dir: Path, tick_s: float, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's own cloud API (and worker): this process's, less every
    ``EDGECLOUD_`` variable, plus the database, registry, rollout tick and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECLOUD_")}
    env.update(
        {
            "EDGECLOUD_DATABASE_URL": database_url,
            "EDGECLOUD_REGISTRY_DIR": str(registry_dir),
            "EDGECLOUD_ROLLOUT_TICK_S": str(tick_s),
            "EDGECLOUD_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of ``samples`` (q in 0..100); 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    # nearest rank: the smallest sample with at least q % of the samples at or below it
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) / 100) - 1))
    return ordered[rank]


class BenchResult(BaseModel):
    name: str
    messages: int
    seconds: float
    rate_per_s: float
    p50_ms: float
    p99_ms: float
    lost: int
    duplicates: int
    limit_rate_per_s: float
    ratio_to_limit: float
    runs: int = 1
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_runs(cls, name: str, runs: list[BenchResult], **extra: Any) -> BenchResult:
        """Median of several runs (the machine is shared: one run is noise)."""

        def med(attr: str) -> float:
            return float(statistics.median(getattr(r, attr) for r in runs))

        return cls(
            name=name,
            messages=int(med("messages")),
            seconds=med("seconds"),
            rate_per_s=med("rate_per_s"),
            p50_ms=med("p50_ms"),
            p99_ms=med("p99_ms"),
            lost=max(r.lost for r in runs),
            duplicates=max(r.duplicates for r in runs),
            limit_rate_per_s=med("limit_rate_per_s"),
            ratio_to_limit=med("ratio_to_limit"),
            runs=len(runs),
            extra={"per_run": [r.model_dump(exclude={"extra"}) for r in runs], **extra},
        )

    def write(self, path: Path | None) -> None:
        text = json.dumps(self.model_dump(), indent=2)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
