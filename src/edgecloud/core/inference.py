"""Why a model cannot be run from a manifest (refusals) or cannot serve one reading (failures).

Shared by the edge backends and the cloud registry's push-time check, so that both give the
same reason codes: nothing is registered that every edge node would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgecloud.core.errors import ModelError

FAILURE_REASONS = (
    "value_missing",  # the reading lacks a value the model needs
    "wrong_type",  # a number where an array is needed, or the reverse
    "wrong_shape",  # an array of a length (a tensor of a shape) the model cannot take
    "wrong_dtype",  # a tensor whose values do not fit the model's dtype (fractions for int64)
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
