"""Settings of the model agent (rollouts, issue 6): a config object, not read from the environment.

``EdgeSettings`` inherits ``ModelAgentFields`` (``EDGECLOUD_CLOUD_API_URL``,
``EDGECLOUD_NODE_TOKEN``, ...) and builds ``ModelAgentSettings`` from its own values, node id
and operator keys included (``EdgeSettings.model_agent_settings()``). The agent follows the
cloud only when both the cloud API URL and the node token are set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from edgecloud.core.readings import ID_PATTERN


class CloudLinkFields(BaseModel):
    """How a node reaches the cloud's desired state (shared by the model and device agents)."""

    cloud_api_url: str | None = Field(None, description="cloud API base URL (desired state)")
    node_token: str | None = Field(None, description="this node's API token (scope node)")
    desired_wait_s: float = Field(20.0, ge=0, le=60, description="long-poll of desired state")
    desired_retry_s: float = Field(2.0, gt=0, description="wait after the cloud is unreachable")


class ModelAgentFields(BaseModel):
    model_store_dir: Path | None = Field(
        None, description="downloaded bundles and state (default ~/.cache/edgecloud/edge/NODE)"
    )
    shadow_timeout_s: float = Field(
        300.0, gt=0, description="a candidate that saw too few readings by then fails"
    )
    model_status_via: Literal["mqtt", "http", "both"] = Field(
        "both", description="where model_status events go: the edge broker, the cloud API, both"
    )


class ModelAgentSettings(CloudLinkFields, ModelAgentFields):
    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    operator_public_keys: str = Field("", description="trusted operator keys (comma separated)")

    @property
    def enabled(self) -> bool:
        return bool(self.cloud_api_url and self.node_token)

    @property
    def store_dir(self) -> Path:
        base = self.model_store_dir or Path("~/.cache/edgecloud/edge") / self.node_id
        return base.expanduser()
