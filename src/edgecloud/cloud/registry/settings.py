"""Settings of the registry and the rollout engine (used by the cloud API).

The fields live here so that the registry owns its names (``EDGECLOUD_REGISTRY_DIR``,
``EDGECLOUD_REGISTRY_MAX_BUNDLE_BYTES``, ``EDGECLOUD_REGISTRY_MAX_FILES``,
``EDGECLOUD_OPERATOR_PUBLIC_KEYS``: keys trusted at start, added to the ``operator_keys`` table,
``EDGECLOUD_ROLLOUT_TICK_S``, ...), but they are read from the environment by the role's one
settings tree, ``CloudSettings``, which inherits ``RegistryFields`` and builds
``RegistrySettings`` from its own values (``CloudSettings.registry_settings()``). Nothing here
reads the environment (issue 17 move 3).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from edgecloud.core.archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES


class RegistryFields(BaseModel):
    registry_dir: Path = Field(
        Path("~/.cache/edgecloud/registry"), description="content-addressed artifact store"
    )
    registry_max_bundle_bytes: int = Field(
        DEFAULT_MAX_BYTES, ge=1024, description="largest bundle, unpacked (all files together)"
    )
    registry_max_files: int = Field(
        DEFAULT_MAX_FILES, ge=2, le=1000, description="most files in one bundle"
    )
    operator_public_keys: str = Field(
        "", description="operator keys trusted at start: comma separated paths or base64"
    )
    rollout_tick_s: float = Field(0.5, gt=0, le=60, description="rollout engine period")
    rollout_engine: bool = Field(True, description="drive rollouts from this API process")
    node_scan_s: float = Field(
        5.0, gt=0, le=3600, description="period of the node online / offline scan (Dapr)"
    )


class RegistrySettings(RegistryFields):
    """The registry's config object: a plain model, built from the role's tree."""

    @property
    def store_dir(self) -> Path:
        return self.registry_dir.expanduser()
