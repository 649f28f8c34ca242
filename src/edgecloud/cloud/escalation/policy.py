"""Pure pieces of the escalation policy: backoff, circuit breaker, token budget.

Clocks are injected so the unit tests drive time by hand.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**attempt)]."""
    cap = min(max_s, base_s * (2**attempt))
    return float(cap * rng())


@dataclass
class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` lets ONE probe through
    (half-open): its success closes the circuit, its failure opens it again."""

    failures: int
    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    probing: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def retry_in_s(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))

    def allow(self) -> bool:
        """May a request go out now? In half-open, only one at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self.probing = False

    def failure(self) -> None:
        self.consecutive += 1
        if self.probing or self.consecutive >= self.failures:
            self.opened_at = self.clock()
        self.probing = False


@dataclass
class TokenBudget:
    """``budget`` tokens per ``period_s`` (wall clock, so a restart keeps the same period)."""

    budget: int
    period_s: float
    clock: Callable[[], float] = time.time
    used: int = 0
    period_start: float = field(default=-1.0)

    def _roll(self) -> None:
        now = self.clock()
        start = now - (now % self.period_s)
        if start != self.period_start:
            self.period_start = start
            self.used = 0

    def restore(self, period_start: float, used: int) -> None:
        self._roll()
        if period_start == self.period_start:
            self.used = used

    @property
    def exhausted(self) -> bool:
        self._roll()
        return self.used >= self.budget

    def spend(self, tokens: int) -> None:
        self._roll()
        self.used += max(0, tokens)

    @property
    def resets_at(self) -> float:
        self._roll()
        return self.period_start + self.period_s
