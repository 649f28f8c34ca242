"""The device agent: keeps the node's broker admitting exactly the devices the cloud's
registry gives this node (issue 16).

One thread: long-poll the node's desired state (ETag); when its ``devices`` part changes,
``GET /api/v1/nodes/{id}/devices`` (hashes and fingerprints only) and apply the difference to
the broker (``device_broker.MosquittoDevices``). The applied set is saved to
``devices.json`` after each apply. While the cloud is unreachable nothing changes: the broker
keeps the last applied set (the plugin's own file and the password file persist across
broker restarts too), and the agent catches up when the cloud answers again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import httpx

from edgecloud.core.desired import DesiredDevices
from edgecloud.core.errors import EdgecloudError, TransportError
from edgecloud.edge.device_broker import Device, MosquittoDevices, plan
from edgecloud.edge.device_settings import DeviceAgentSettings
from edgecloud.edge.models.fetch import CloudClient

log = logging.getLogger(__name__)


class DeviceAgent:
    def __init__(self, settings: DeviceAgentSettings, broker: MosquittoDevices) -> None:
        self.s = settings
        self.broker = broker
        self.client = CloudClient(
            settings.cloud_api_url or "", settings.node_token or "", settings.node_id
        )
        self._http = httpx.Client(
            base_url=(settings.cloud_api_url or "").rstrip("/"),
            headers={"Authorization": f"Bearer {settings.node_token}"},
            timeout=30.0,
        )
        self.applied: dict[str, Device] = _load(settings.state_path)
        self.applied_at: float | None = None
        self.version: DesiredDevices | None = None
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.client.close()
        self._http.close()
        close = getattr(self.broker.control, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        etag: str | None = None
        while not self.stopping.is_set():
            try:
                etag, desired = self.client.desired(etag, self.s.desired_wait_s)
                if desired is not None:
                    version = desired.devices
                    if version != self.version or self.applied_at is None:
                        self.sync()
                        self.version = version
            except EdgecloudError as exc:  # the cloud or the broker is away: keep what is applied
                log.warning("device agent: %s; retrying", exc)
                etag = None
                self.stopping.wait(self.s.desired_retry_s)

    def fetch(self) -> list[Device]:
        try:
            res = self._http.get(f"/api/v1/nodes/{self.s.node_id}/devices")
        except httpx.HTTPError as exc:
            raise TransportError(f"devices: {exc}") from exc
        if res.status_code != 200:
            raise TransportError(f"devices: HTTP {res.status_code} {res.text[:200]}")
        return [Device.of(d) for d in res.json()["devices"]]

    def sync(self) -> None:
        """Fetch the node's devices and apply the difference (all of it the first time: the
        plugin answers "already exists" for what it has, which is harmless)."""
        wanted = {d.device_id: d for d in self.fetch()}
        p = plan({} if self.applied_at is None else self.applied, wanted.values())
        p.remove = sorted(set(p.remove) | (set(self.applied) - set(wanted)))
        if self.applied_at is not None and p.empty:
            return
        self.broker.apply(p, wanted, set(self.applied))
        self.applied = wanted
        self.applied_at = time.time()
        _save(self.s.state_path, wanted)
        log.info(
            "devices applied",
            extra={
                "node_id": self.s.node_id,
                "count": len(wanted),
                "added": len(p.add),
                "removed": len(p.remove),
            },
        )


def _load(path: Path) -> dict[str, Device]:
    try:
        raw = json.loads(path.read_text())
        return {d["device_id"]: Device.of(d) for d in raw["devices"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _save(path: Path, devices: dict[str, Device]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows = [d.__dict__ for d in devices.values()]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"devices": rows}, f)
    os.replace(tmp, path)


def maybe_start(settings: DeviceAgentSettings) -> DeviceAgent | None:
    """Start the device agent when configured (see ``device_settings``); else None."""
    from edgecloud.adapters.dynsec import DynsecControl
    from edgecloud.adapters.mqtt import MqttConfig

    s = settings
    if not s.enabled or s.devices_password_file is None:
        return None
    control = DynsecControl(MqttConfig.from_url(s.devices_mqtt_url or s.mqtt_url))
    control.start()
    agent = DeviceAgent(
        s, MosquittoDevices(control, s.devices_password_file, s.devices_broker_pid_file)
    )
    agent.start()
    return agent
