"""Inference settings (``EDGECLOUD_ORT_*``, ``EDGECLOUD_INFERENCE_*``): a config object.

The fields are declared once in ``InferenceFields``; ``EdgeSettings`` (the role's one settings
tree) inherits them, reads them from the environment and flags, and builds ``InferenceSettings``
from its own values (``EdgeSettings.inference_settings()``). Nothing here reads the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from edgecloud.core.manifest import ManifestLimits


class InferenceFields(BaseModel):
    ort_providers: str = Field(
        "auto",
        description="execution providers in order of preference, or auto "
        "(TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider by availability)",
    )
    ort_intra_op_threads: int = Field(1, ge=0, le=256, description="onnxruntime intra-op threads")
    ort_inter_op_threads: int = Field(1, ge=0, le=256, description="onnxruntime inter-op threads")
    ort_allow_spinning: bool = Field(False, description="let onnxruntime threads spin when idle")
    inference_max_batch: int = Field(
        1024, ge=1, le=65_536, description="readings per session run (larger batches are split)"
    )
    inference_max_state_devices: int = Field(
        100_000, ge=1, description="devices whose recurrent state is kept (least recent dropped)"
    )
    require_signature: bool = Field(True, description="refuse bundles without a trusted signature")
    max_model_bytes: int = Field(512 * 1024 * 1024, ge=1, description="largest model file")

    @field_validator("ort_providers")
    @classmethod
    def _providers(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("ort_providers is empty; use auto or a comma separated list")
        return v


class InferenceSettings(InferenceFields):
    operator_public_keys: str = Field(
        "", description="trusted operator keys: comma separated paths or base64 raw keys"
    )

    @property
    def providers(self) -> str | list[str]:
        if self.ort_providers == "auto":
            return "auto"
        return [p.strip() for p in self.ort_providers.split(",") if p.strip()]

    @property
    def limits(self) -> ManifestLimits:
        return ManifestLimits(max_file_bytes=self.max_model_bytes)
