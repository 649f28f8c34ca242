"""Shadow mode: the candidate model runs beside the active one on the same live readings.

``ShadowTap`` takes the active model's place in the holder: it answers with the ACTIVE
model's outcomes (so what the node publishes does not change) and queues each batch, without
blocking, for the model agent's thread, which runs the candidate on it and compares. A full
queue drops batches from the comparison, never readings from the data path.

Each shadow reading is one of: compared (both models served it: agreement, score drift),
candidate only (the active model failed on it: a candidate of another kind of model, fed
readings the active one cannot take), or a candidate error. Where nothing could be compared
the gates are the candidate's own (error rate, latency, score distribution and anomaly rate),
and ``shadow_case`` / ``gate_failure`` say which case applied.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceBackend, Outcome


class ShadowTap:
    def __init__(self, active: InferenceBackend, maxsize: int = 256) -> None:
        self.active = active
        self.ref: ModelRef = active.ref
        self.batches: queue.Queue[tuple[list[Reading], list[Outcome]]] = queue.Queue(maxsize)
        self.dropped = 0

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]:
        out = self.active.infer_batch(readings)
        try:
            self.batches.put_nowait((list(readings), out))
        except queue.Full:
            self.dropped += len(readings)
        return out

    def close(self) -> None:
        """Nothing: the model agent owns both models."""


def _p99(samples: list[float]) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class ShadowStats:
    compared: int = 0
    agreed: int = 0
    errors: int = 0
    drift_sum: float = 0.0
    drift_n: int = 0
    candidate_only: int = 0  # the active model failed on it, the candidate served it
    active_failed: int = 0
    anomalies: int = 0  # the candidate's anomaly flags
    scores: list[float] = field(default_factory=list)  # the candidate's scores
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def readings(self) -> int:
        return self.compared + self.errors + self.candidate_only

    def add(self, active: Sequence[Outcome], candidate: Sequence[Outcome], seconds: float) -> None:
        per_reading = seconds * 1000.0 / max(1, len(candidate))
        for a, c in zip(active, candidate, strict=True):
            self.latencies_ms.append(per_reading)
            if not isinstance(a, InferenceResult):
                self.active_failed += 1
            if not isinstance(c, InferenceResult):
                self.errors += 1
                continue
            self.anomalies += c.anomaly
            if c.score is not None:
                self.scores.append(c.score)
            if not isinstance(a, InferenceResult):
                self.candidate_only += 1  # nothing to compare with: the candidate's own gates
                continue
            self.compared += 1
            self.agreed += a.anomaly == c.anomaly
            if a.score is not None and c.score is not None:
                self.drift_sum += abs(c.score - a.score)
                self.drift_n += 1

    def metrics(self) -> dict[str, float]:
        """Agreement and score drift only where readings were compared (a gate on a metric
        that is absent does not apply, here and in the cloud)."""
        served = self.compared + self.candidate_only
        out = {
            "readings": float(self.readings),
            "compared": float(self.compared),
            "candidate_only": float(self.candidate_only),
            "active_failed": float(self.active_failed),
            "error_rate": self.errors / self.readings if self.readings else 0.0,
            "latency_p99_ms": round(_p99(self.latencies_ms), 3),
        }
        if self.compared:
            out["agreement"] = self.agreed / self.compared
        if self.drift_n:
            out["score_drift"] = self.drift_sum / self.drift_n
        if served:
            out["anomaly_rate"] = self.anomalies / served
        if self.scores:
            arr = sorted(self.scores)
            out["score_mean"] = sum(arr) / len(arr)
            out["score_p50"] = arr[len(arr) // 2]
            out["score_p99"] = _p99(arr)
        return out


def run_shadow(
    tap: ShadowTap, candidate: InferenceBackend, want: int, timeout_s: float, stopping: object
) -> ShadowStats:
    """Feed the candidate the tapped batches until ``want`` readings or ``timeout_s``."""
    stats = ShadowStats()
    deadline = time.monotonic() + timeout_s
    is_set = getattr(stopping, "is_set", lambda: False)
    while stats.readings < want and time.monotonic() < deadline and not is_set():
        try:
            readings, active_out = tap.batches.get(timeout=0.2)
        except queue.Empty:
            continue
        t0 = time.perf_counter()
        try:
            cand_out = candidate.infer_batch(readings)
        except Exception as exc:  # a candidate bug counts as errors, never stops the agent
            from edgecloud.edge.inference.port import InferenceFailure

            cand_out = [InferenceFailure("model_error", str(exc))] * len(readings)
        stats.add(active_out, cand_out, time.perf_counter() - t0)
    return stats


def shadow_case(metrics: dict[str, float]) -> str:
    """Which gates applied, in words (the ``shadow`` report's detail, and gate messages)."""
    compared = int(metrics.get("compared", 0))
    alone = int(metrics.get("candidate_only", 0))
    errors = round(metrics.get("error_rate", 0.0) * metrics.get("readings", 0.0))
    if compared and alone:
        return (
            f"compared with the active model on {compared} readings; the active model failed "
            f"on {alone} more, which the candidate served"
        )
    if compared:
        return f"compared with the active model on {compared} readings"
    if alone:
        return (
            f"candidate alone: the active model failed on all {alone} readings it served "
            "(another kind of model): gated on its own error rate, latency and scores"
        )
    if errors:
        return f"the candidate failed on all {errors} readings"
    return "no readings"


def gate_failure(
    metrics: dict[str, float], gates: dict[str, float], want: int, timeout_s: float | None = None
) -> str | None:
    """Why the candidate may not be promoted, or None."""
    seen = metrics.get("readings", 0.0)
    if seen < want:
        within = f" within {timeout_s:g} s" if timeout_s is not None else " in time"
        dropped = int(metrics.get("shadow_dropped", 0))
        why = "no readings reached the candidate" if seen == 0 else shadow_case(metrics)
        if dropped:
            why += f"; {dropped} readings were dropped from a full shadow queue"
        return f"shadow saw {seen:.0f} of {want} readings{within} ({why})"
    for metric, gate, low in (
        ("agreement", "min_agreement", True),
        ("score_drift", "max_score_drift", False),
        ("error_rate", "max_error_rate", False),
        ("latency_p99_ms", "max_latency_ms", False),
        ("anomaly_rate", "max_anomaly_rate", False),
    ):
        if metric not in metrics or gate not in gates:
            continue
        value, limit = metrics[metric], float(gates[gate])
        if (value < limit) if low else (value > limit):
            return f"shadow gate {metric}: {value:.4g} (limit {limit:g}; {shadow_case(metrics)})"
    return None
