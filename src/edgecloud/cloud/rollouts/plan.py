"""Pure rollout arithmetic: gate thresholds, wave membership, one node's verdict."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["pass", "fail", "wait", "offline"]
FAILED_PHASES = frozenset({"failed", "refused"})


class Gates(BaseModel):
    """What a node must show before its wave counts as good (sent to nodes as ``shadow``)."""

    model_config = ConfigDict(extra="forbid")

    shadow_readings: int = Field(50, ge=0, le=1_000_000, description="readings run in shadow")
    min_agreement: float = Field(0.9, ge=0, le=1, description="anomaly-flag agreement")
    max_score_drift: float = Field(0.1, ge=0, description="largest mean |score change|")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="failed inferences / readings")
    max_latency_ms: float = Field(100.0, gt=0, description="candidate p99 inference latency")
    max_anomaly_rate: float = Field(
        1.0, ge=0, le=1, description="candidate anomaly flags / readings it served"
    )
    wave_timeout_s: float = Field(600.0, gt=0, description="a wave fails when not done by then")
    offline_after_s: float = Field(
        30.0, gt=0, description="a node silent this long does not block its wave"
    )


def parse_waves(waves: list[int]) -> list[int]:
    if not waves or len(waves) > 20:
        raise ValueError("give 1 to 20 waves")
    if any(not 1 <= w <= 100 for w in waves) or any(b <= a for a, b in itertools.pairwise(waves)):
        raise ValueError("waves are increasing percentages between 1 and 100")
    return waves


class WavesIn(BaseModel):
    waves: list[int]

    @field_validator("waves")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        return parse_waves(v)


def wave_of(nodes: list[str], waves: list[int]) -> dict[str, int]:
    """Node -> wave index, nodes taken in order; nodes past the last wave are left out."""
    out: dict[str, int] = {}
    start = 0
    for index, pct in enumerate(waves):
        end = max(start + (1 if start < len(nodes) else 0), math.ceil(len(nodes) * pct / 100))
        for node in nodes[start:end]:
            out[node] = index
        start = end
    return out


@dataclass(frozen=True)
class NodeView:
    status: str
    detail: str | None
    metrics: Mapping[str, float]
    online: bool


def verdict(node: NodeView, gates: Gates) -> tuple[Verdict, str | None]:
    """pass (active, metrics within gates), fail (with why), wait, or offline (not blocking)."""
    if node.status in FAILED_PHASES:
        return "fail", f"{node.status}: {node.detail or 'no detail'}"
    m = node.metrics
    checks: list[tuple[str, float | None, float, bool]] = []
    for name, limit, low in (
        ("agreement", gates.min_agreement, True),
        ("score_drift", gates.max_score_drift, False),
        ("error_rate", gates.max_error_rate, False),
        ("latency_p99_ms", gates.max_latency_ms, False),
        ("anomaly_rate", gates.max_anomaly_rate, False),
    ):
        value = m.get(name)
        if value is None:
            continue
        bad = value < limit if low else abs(value) > limit
        checks.append((name, value, limit, bad))
    for name, value, limit, bad in checks:
        if bad and value is not None:
            return "fail", f"gate {name}: {value:.4g} (limit {limit:g})"
    if node.status == "active":
        return "pass", None
    return ("wait" if node.online else "offline"), None
