"""Settings of the device agent (issue 16), read with the ``EDGECLOUD_`` prefix.

The agent applies the cloud's device registry to its broker only when the cloud is set
(``EDGECLOUD_CLOUD_API_URL``, ``EDGECLOUD_NODE_TOKEN``) and ``EDGECLOUD_DEVICES_PASSWORD_FILE``
names the broker's ``password_file``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgecloud.core.readings import ID_PATTERN


class DeviceAgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGECLOUD_", extra="ignore")

    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    cloud_api_url: str | None = Field(None, description="cloud API base URL")
    node_token: str | None = Field(None, description="this node's API token (scope node)")
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="the edge broker")
    devices_mqtt_url: str | None = Field(
        None, description="account allowed on $CONTROL/dynamic-security (default: mqtt_url)"
    )
    devices_password_file: Path | None = Field(
        None, description="the broker's password_file, where device hashes go"
    )
    devices_broker_pid_file: Path | None = Field(
        None, description="the broker's pid file: SIGHUP reloads the password file"
    )
    devices_state_dir: Path | None = Field(
        None, description="the last applied set (default ~/.cache/edgecloud/edge/NODE)"
    )
    desired_wait_s: float = Field(20.0, ge=0, le=60, description="long-poll of desired state")
    desired_retry_s: float = Field(2.0, gt=0, description="wait after the cloud is unreachable")

    @property
    def enabled(self) -> bool:
        return bool(self.cloud_api_url and self.node_token and self.devices_password_file)

    @property
    def state_path(self) -> Path:
        base = self.devices_state_dir or Path("~/.cache/edgecloud/edge") / self.node_id
        return base.expanduser() / "devices.json"
