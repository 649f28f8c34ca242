"""The inference port: what the edge agent calls, whatever runs the model.

InferenceBackend.infer_batch(readings) -> one InferenceResult or InferenceFailure per
reading, in order. A failure concerns one reading (a value the model needs is missing or
has the wrong shape, the endpoint refused it); the agent stores the reading, dead-letters
the failure and goes on. A model that cannot be used at all is refused at load
(``ModelRefused``, ``InvalidManifest``, ``SignatureError``), never at the first batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from edgecloud.core.errors import ModelError
from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.readings import Reading

FAILURE_REASONS = (
    "value_missing",  # the reading lacks a value the model needs
    "wrong_type",  # a number where an array is needed, or the reverse
    "wrong_shape",  # an array of a length the model cannot take
    "model_error",  # the runtime failed on this reading
    "bad_output",  # the model's output for this reading cannot be mapped
    "endpoint_error",  # the OpenAI-compatible endpoint failed (after retries)
    "bad_answer",  # the endpoint answered, but not with the JSON the manifest maps
)

REFUSAL_REASONS = (
    "unloadable",  # the runtime cannot open the file
    "input_not_covered",  # a model input the manifest does not fill
    "unknown_input",  # the manifest fills an input the model does not have
    "unknown_output",  # an output named by the manifest does not exist
    "dtype",  # a dtype that cannot be made (or does not match)
    "shape",  # a shape the manifest's data cannot take
    "endpoint",  # runtime openai: no base URL, or a prompt that does not format
    "unsigned",  # no trusted keys while signatures are required
)


@dataclass(frozen=True)
class InferenceFailure:
    reason: str
    detail: str


class ModelRefused(ModelError):
    """The model cannot be run from this manifest; ``reason`` is one of ``REFUSAL_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Outcome = InferenceResult | InferenceFailure


class InferenceBackend(Protocol):
    ref: ModelRef

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]: ...

    def close(self) -> None: ...
