"""Backoff, circuit breaker and token budget, driven by hand-set clocks."""

from __future__ import annotations

from edgecloud.cloud.escalation.policy import CircuitBreaker, TokenBudget, backoff_delay


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff_delay(a, 0.5, 3.0, rng=lambda: 1.0) for a in range(5)] == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
    ]
    assert backoff_delay(3, 0.5, 3.0, rng=lambda: 0.25) == 0.75


def test_breaker_opens_after_n_failures_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=3, cooldown_s=10.0, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t += 9.9
    assert not b.allow()
    clock.t += 0.1
    assert b.state == "half_open"
    assert b.allow()  # the one probe
    assert not b.allow()  # nobody else while it is out
    b.failure()  # probe failed: open again for a full cool-down
    assert b.state == "open" and b.retry_in_s() == 10.0
    clock.t += 10.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.consecutive == 0 and b.allow()


def test_success_resets_the_consecutive_count() -> None:
    b = CircuitBreaker(failures=2, cooldown_s=1.0, clock=Clock())
    b.failure()
    b.success()
    b.failure()
    assert b.state == "closed"


def test_budget_is_spent_then_resets_with_the_period() -> None:
    clock = Clock(7200.0)
    budget = TokenBudget(budget=100, period_s=3600.0, clock=clock)
    budget.spend(60)
    assert not budget.exhausted
    budget.spend(40)
    assert budget.exhausted and budget.resets_at == 10800.0
    clock.t = 10800.0
    assert not budget.exhausted and budget.used == 0


def test_budget_restore_keeps_tokens_only_within_the_same_period() -> None:
    clock = Clock(7300.0)
    budget = TokenBudget(budget=100, period_s=3600.0, clock=clock)
    budget.restore(7200.0, 99)
    assert budget.used == 99
    other = TokenBudget(budget=100, period_s=3600.0, clock=clock)
    other.restore(3600.0, 99)
    assert other.used == 0
