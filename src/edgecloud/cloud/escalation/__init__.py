"""Escalation of anomalous readings to an OpenAI-compatible LLM (OpenAI, NVIDIA NIM, ...).

``escalation_status(session)`` is what the REST API shows; see docs/cloud-worker.md.
"""

from edgecloud.cloud.escalation.policy import CircuitBreaker, TokenBudget, backoff_delay
from edgecloud.cloud.escalation.service import (
    EscalationRunner,
    EscalationService,
    Verdict,
    build_messages,
)
from edgecloud.cloud.escalation.state import (
    STATES,
    escalation_status,
    publish_disabled,
    write_state,
)

__all__ = [
    "STATES",
    "CircuitBreaker",
    "EscalationRunner",
    "EscalationService",
    "TokenBudget",
    "Verdict",
    "backoff_delay",
    "build_messages",
    "escalation_status",
    "publish_disabled",
    "write_state",
]
