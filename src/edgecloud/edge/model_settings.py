"""Settings of the model agent (rollouts, issue 6), read with the ``EDGECLOUD_`` prefix.

The agent follows the cloud only when both ``EDGECLOUD_CLOUD_API_URL`` and
``EDGECLOUD_NODE_TOKEN`` are set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgecloud.core.readings import ID_PATTERN


class ModelAgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    cloud_api_url: str | None = Field(None, description="cloud API base URL (desired state)")
    node_token: str | None = Field(None, description="this node's API token (scope node)")
    operator_public_keys: str = Field("", description="trusted operator keys (comma separated)")
    model_store_dir: Path | None = Field(
        None, description="downloaded bundles and state (default ~/.cache/edgecloud/edge/NODE)"
    )
    desired_wait_s: float = Field(20.0, ge=0, le=60, description="long-poll of desired state")
    desired_retry_s: float = Field(2.0, gt=0, description="wait after the cloud is unreachable")
    shadow_timeout_s: float = Field(
        300.0, gt=0, description="a candidate that saw too few readings by then fails"
    )
    model_status_via: Literal["mqtt", "http", "both"] = Field(
        "both", description="where model_status events go: the edge broker, the cloud API, both"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.cloud_api_url and self.node_token)

    @property
    def store_dir(self) -> Path:
        base = self.model_store_dir or Path("~/.cache/edgecloud/edge") / self.node_id
        return base.expanduser()
