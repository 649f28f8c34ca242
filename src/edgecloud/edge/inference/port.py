"""The inference port: what the edge agent calls, whatever runs the model.

InferenceBackend.infer_batch(readings) -> one InferenceResult or InferenceFailure per
reading, in order. A failure concerns one reading (a value the model needs is missing or
has the wrong shape, the endpoint refused it); the agent stores the reading, dead-letters
the failure and goes on. A model that cannot be used at all is refused at load
(``ModelRefused``, ``InvalidManifest``, ``SignatureError``), never at the first batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.inference import (
    FAILURE_REASONS,
    REFUSAL_REASONS,
    InferenceFailure,
    ModelRefused,
)
from edgecloud.core.readings import Reading

Outcome = InferenceResult | InferenceFailure


class InferenceBackend(Protocol):
    ref: ModelRef

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]: ...

    def close(self) -> None: ...


__all__ = [
    "FAILURE_REASONS",
    "REFUSAL_REASONS",
    "InferenceBackend",
    "InferenceFailure",
    "ModelRefused",
    "Outcome",
]
