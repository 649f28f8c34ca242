"""What every ``edgecloud bench`` writes (CONTRACT section 8), and the arithmetic for it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of ``samples`` (q in 0..100); 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
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
