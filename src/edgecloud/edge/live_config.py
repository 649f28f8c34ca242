"""Live configuration of a running agent from its Dapr configuration store (no restart).

The agent subscribes, through its sidecar, to four keys of the ``edge-config`` store
(``configuration.postgresql`` on the node's own Postgres, table ``dapr_configuration``,
deploy/dapr/edge-config):

``edgecloud.threshold``
    the anomaly rule's ``score_above``, in place of the model manifest's (any finite number);
``edgecloud.escalate_threshold``
    the escalation rule's ``score_above`` (likewise);
``edgecloud.batch_size``
    readings per micro-batch (1..100000, as ``EDGECLOUD_BATCH_SIZE``);
``edgecloud.batch_window_ms``
    longest wait for a batch to fill (0..10000, as ``EDGECLOUD_BATCH_WINDOW_MS``).

A value applies from the next batch. An empty value (or a row that was never there) means
the manifest's / the environment's value. A bad value (not a number, out of range) is refused
with one log line and counted in ``config_refused``; the previous value stays. Each applied
change is counted in ``config_changes``; the effective values are gauges of ``/metrics``.

The sidecar is not on the agent's durability path: when it goes away (stopped, ``kill -9``) the
values in force stay, the outage is logged once and counted in ``config_watch_outages``, and the
watch re-subscribes with a backoff; on its return the current values are read again, so a change
made while the sidecar was down applies then.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgecloud.core.events import InferenceResult
from edgecloud.core.manifest import Rule
from edgecloud.edge.inference.port import Outcome
from edgecloud.edge.metrics import Counters

log = logging.getLogger(__name__)

THRESHOLD = "edgecloud.threshold"
ESCALATE_THRESHOLD = "edgecloud.escalate_threshold"
BATCH_SIZE = "edgecloud.batch_size"
BATCH_WINDOW_MS = "edgecloud.batch_window_ms"
KEYS = [THRESHOLD, ESCALATE_THRESHOLD, BATCH_SIZE, BATCH_WINDOW_MS]
NOTIFY_CHANNEL = "edgecloud_config"  # migration 0003's trigger; the subscription's metadata


class BadValue(ValueError):
    pass


def _number(text: str, lo: float | None, hi: float | None, integer: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadValue("not a number") from None
    if not math.isfinite(value):
        raise BadValue("not finite")
    if integer and value != int(value):
        raise BadValue("not an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadValue(f"out of range {lo}..{hi}")
    return value


# key -> (low, high, integer)
_LIMITS: dict[str, tuple[float | None, float | None, bool]] = {
    THRESHOLD: (None, None, False),
    ESCALATE_THRESHOLD: (None, None, False),
    BATCH_SIZE: (1, 100_000, True),
    BATCH_WINDOW_MS: (0, 10_000, False),
}


@dataclass(frozen=True)
class Overrides:
    threshold: float | None = None
    escalate_threshold: float | None = None
    batch_size: int | None = None
    batch_window_ms: float | None = None


class LiveConfig:
    """The overrides in force; ``apply`` is called from the watch thread, the rest from the
    batch loop (one immutable ``Overrides`` swapped under a lock)."""

    def __init__(self, counters: Counters, batch_size: int, batch_window_ms: float) -> None:
        self.counters = counters
        self.default_batch_size = batch_size
        self.default_batch_window_ms = batch_window_ms
        self._lock = threading.Lock()
        self._now = Overrides()
        self._failing = False

    def watch_failed(self, error: str) -> None:
        """The subscription broke or could not open: logged once until it works again."""
        if not self._failing:
            self._failing = True
            self.counters.add(config_watch_outages=1)
            log.warning(
                "dapr configuration subscription failing; the values in force stay",
                extra={"error": error},
            )

    @property
    def overrides(self) -> Overrides:
        return self._now

    @property
    def batch_size(self) -> int:
        value = self._now.batch_size
        return self.default_batch_size if value is None else value

    @property
    def batch_window_ms(self) -> float:
        value = self._now.batch_window_ms
        return self.default_batch_window_ms if value is None else value

    def apply(self, items: dict[str, str]) -> None:
        """Take the known keys of ``items`` (key -> value text); unknown keys are ignored."""
        if self._failing:
            self._failing = False
            log.info("dapr configuration subscribed again")
        with self._lock:
            now = self._now
            changes: dict[str, Any] = {}
            for key, text in sorted(items.items()):
                if key not in _LIMITS:
                    continue
                field = key.removeprefix("edgecloud.")
                value: float | int | None = None
                if text.strip():
                    try:
                        value = _number(text.strip(), *_LIMITS[key])
                    except BadValue as exc:
                        self.counters.add(config_refused=1)
                        log.warning(
                            "configuration value refused; the previous one stays",
                            extra={"key": key, "value": text[:100], "reason": str(exc)},
                        )
                        continue
                    if _LIMITS[key][2]:
                        value = int(value)
                if getattr(now, field) != value:
                    changes[field] = value
            if not changes:
                return
            self._now = Overrides(**{**now.__dict__, **changes})
        self.counters.add(config_changes=len(changes))
        log.info("configuration applied", extra={"changes": changes})

    def decide(self, outcomes: Sequence[Outcome], manifest: Any) -> list[Outcome]:
        """``outcomes`` with anomaly / escalate recomputed where a threshold is overridden:
        the manifest's rule (``model_copy``) with the new ``score_above``."""
        now = self._now
        if now.threshold is None and now.escalate_threshold is None:
            return list(outcomes)
        decision = getattr(manifest, "decision", None)
        anomaly = _rule(getattr(decision, "anomaly", None), now.threshold)
        escalate = _rule(getattr(decision, "escalate", None), now.escalate_threshold)
        out: list[Outcome] = []
        for o in outcomes:
            if isinstance(o, InferenceResult):
                update: dict[str, bool] = {}
                if anomaly is not None:
                    update["anomaly"] = anomaly.holds(o.score, o.label, o.confidence)
                if escalate is not None:
                    update["escalate"] = escalate.holds(o.score, o.label, o.confidence)
                o = o.model_copy(update=update)
            out.append(o)
        return out

    def gauges(self, manifest: Any) -> dict[str, float]:
        """Effective values (NaN: no threshold, no model)."""
        now = self._now
        decision = getattr(manifest, "decision", None)
        return {
            "config_threshold": _effective(getattr(decision, "anomaly", None), now.threshold),
            "config_escalate_threshold": _effective(
                getattr(decision, "escalate", None), now.escalate_threshold
            ),
            "config_batch_size": float(self.batch_size),
            "config_batch_window_ms": float(self.batch_window_ms),
        }


def _rule(base: Any, threshold: float | None) -> Rule | None:
    if threshold is None:
        return None
    if isinstance(base, Rule):
        return base.model_copy(update={"score_above": threshold})
    return Rule(score_above=threshold)


def _effective(base: Any, threshold: float | None) -> float:
    if threshold is not None:
        return threshold
    value = getattr(base, "score_above", None)
    return float(value) if value is not None else math.nan
