"""Settings of the device agent (issue 16): a config object, not read from the environment.

``EdgeSettings`` inherits ``DeviceAgentFields`` (``EDGECLOUD_DEVICES_*``) and builds
``DeviceAgentSettings`` from its own values (``EdgeSettings.device_agent_settings()``), so the
node id, cloud link and broker URL are the agent's own.

The agent applies the cloud's device registry to its broker only when the cloud is set
(``EDGECLOUD_CLOUD_API_URL``, ``EDGECLOUD_NODE_TOKEN``) and ``EDGECLOUD_DEVICES_PASSWORD_FILE``
names the broker's ``password_file``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from edgecloud.core.readings import ID_PATTERN
from edgecloud.edge.models.settings import CloudLinkFields


class DeviceAgentFields(BaseModel):
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


class DeviceAgentSettings(CloudLinkFields, DeviceAgentFields):
    node_id: str = Field("edge-1", pattern=ID_PATTERN, description="this node's id")
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="the edge broker")

    @property
    def enabled(self) -> bool:
        return bool(self.cloud_api_url and self.node_token and self.devices_password_file)

    @property
    def state_path(self) -> Path:
        base = self.devices_state_dir or Path("~/.cache/edgecloud/edge") / self.node_id
        return base.expanduser() / "devices.json"
