"""Settings of the registry and the rollout engine (read by the cloud API at start).

Kept apart from ``CloudSettings`` (the worker's) so that the registry owns its names:
``EDGECLOUD_REGISTRY_DIR``, ``EDGECLOUD_REGISTRY_MAX_BUNDLE_BYTES``,
``EDGECLOUD_REGISTRY_MAX_FILES``, ``EDGECLOUD_OPERATOR_PUBLIC_KEYS`` (keys trusted at start, added
to the ``operator_keys`` table) and ``EDGECLOUD_ROLLOUT_TICK_S``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    registry_dir: Path = Field(
        Path("~/.cache/edgecloud/registry"), description="content-addressed artifact store"
    )
    registry_max_bundle_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="largest bundle, unpacked (all files together)"
    )
    registry_max_files: int = Field(16, ge=2, le=1000, description="most files in one bundle")
    operator_public_keys: str = Field(
        "", description="operator keys trusted at start: comma separated paths or base64"
    )
    rollout_tick_s: float = Field(0.5, gt=0, le=60, description="rollout engine period")
    rollout_engine: bool = Field(True, description="drive rollouts from this API process")

    @property
    def store_dir(self) -> Path:
        return self.registry_dir.expanduser()
