"""Edge inference: bundles in, one result (or failure) per reading out.

backend = load_bundle(Path("models/bundles/sensor-anomaly/1.0.0"), settings=InferenceSettings())
outcomes = backend.infer_batch(readings)   # InferenceResult | InferenceFailure, in order
"""

from edgecloud.edge.inference.loader import load_bundle
from edgecloud.edge.inference.port import (
    FAILURE_REASONS,
    REFUSAL_REASONS,
    InferenceBackend,
    InferenceFailure,
    ModelRefused,
    Outcome,
)
from edgecloud.edge.inference.settings import InferenceSettings

__all__ = [
    "FAILURE_REASONS",
    "REFUSAL_REASONS",
    "InferenceBackend",
    "InferenceFailure",
    "InferenceSettings",
    "ModelRefused",
    "Outcome",
    "load_bundle",
]
