"""The local stack's simulated devices, registered through the cloud's registry (issue 16).

``dev up`` registers a small fleet (``sim-001``...: ``PER_NODE`` per node, the first of each
node with a certificate of the stack's fleet CA, the others with a password), each for the
node whose shard owns it, and waits until the nodes' agents have applied them to the broker
(one dynamic-security client each). Their credentials are kept in ``<state>/devices.json``
(0600; certificates and keys under ``<state>/devices/``) for ``dev status --json``. The demo
registers its run's devices the same way (``register``) and publishes each with its own
account; the shared ``simulator`` account is left to the load generator (``edgecloud bench``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from edgecloud.core import pki
from edgecloud.core.errors import ServiceError
from edgecloud.core.topics import device_shard
from edgecloud.dev import process
from edgecloud.dev.mosquitto import DYNSEC_ACCOUNT
from edgecloud.dev.stack import Infra

REGISTRY = "/api/v1/devices/registry"
PER_NODE = 2
APPLY_TIMEOUT_S = 60.0


def owners(prefix: str, count: int, nodes: list[str]) -> dict[str, str]:
    """``{prefix}-001``... -> the node whose shard owns it (as the agents split them)."""
    ids = [f"{prefix}-{i:03d}" for i in range(1, count + 1)]
    if len(nodes) == 1:
        return dict.fromkeys(ids, nodes[0])
    return {d: nodes[device_shard(d, len(nodes)) - 1] for d in ids}


def register(
    infra: Infra, api_url: str, operate_token: str, owner: dict[str, str], certs: set[str]
) -> dict[str, dict[str, Any]]:
    """Register ``owner``'s devices (those in ``certs`` with a certificate of the stack's CA,
    key and certificate written under ``<state>/devices/``); returns each one's credentials."""
    folder = infra.state_dir / "devices"
    ca = pki.load_ca(infra.mosquitto.ca_dir) if certs else None
    rows: list[dict[str, Any]] = []
    creds: dict[str, dict[str, Any]] = {}
    for device, node in sorted(owner.items()):
        row: dict[str, Any] = {"device_id": device, "node_id": node}
        if device in certs and ca is not None:
            issued = pki.issue(ca, device)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            cert_file, key_file = folder / f"{device}.pem", folder / f"{device}.key"
            cert_file.write_text(issued.cert_pem)
            _write_private(key_file, issued.key_pem or "")
            row["cert_pem"] = issued.cert_pem
            creds[device] = {"node_id": node, "auth": "cert", "cert_file": str(cert_file),
                             "key_file": str(key_file)}  # fmt: skip
        rows.append(row)
    headers = {"Authorization": f"Bearer {operate_token}"}
    try:
        res = httpx.post(api_url + REGISTRY, json={"devices": rows}, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise ServiceError(f"device registry: {exc}") from exc
    if res.status_code != 201:
        raise ServiceError(f"device registry: HTTP {res.status_code} {res.text[:300]}")
    for item in res.json()["items"]:
        if item.get("password"):
            creds[item["device_id"]] = {"node_id": owner[item["device_id"]], "auth": "password",
                                        "username": item["device_id"],
                                        "password": item["password"]}  # fmt: skip
    return creds


def wait_applied(infra: Infra, device_ids: list[str], timeout: float = APPLY_TIMEOUT_S) -> None:
    """Until every one of ``device_ids`` is a dynamic-security client of the broker (the
    nodes' agents applied them), asked over ``$CONTROL`` with the ``dynsec`` account."""
    from edgecloud.adapters.dynsec import DynsecControl
    from edgecloud.adapters.mqtt import MqttConfig

    user, pw = infra.mqtt_account(DYNSEC_ACCOUNT)
    control = DynsecControl(
        MqttConfig(host=infra.mqtt_host, port=infra.mqtt_port, username=user, password=pw)
    )
    control.start()
    try:

        def applied() -> bool:
            answers = control.send([{"command": "getClient", "username": d} for d in device_ids])
            return not any(a.get("error") for a in answers)

        process.wait_until(applied, timeout, "the nodes' agents applying the devices", interval=0.5)
    finally:
        control.close()


def ensure(infra: Infra, api_url: str, operate_token: str, nodes: list[str]) -> dict[str, Any]:
    """The stack's simulated fleet, registered once per state dir (``devices.json``)."""
    path = infra.state_dir / "devices.json"
    try:
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored
    except (OSError, ValueError):
        pass
    owner = owners("sim", PER_NODE * len(nodes), nodes)
    certs = {next(d for d, n in sorted(owner.items()) if n == node)
             for node in nodes if node in owner.values()}  # fmt: skip
    creds = register(infra, api_url, operate_token, owner, certs)
    wait_applied(infra, sorted(creds))
    _write_private(path, json.dumps(creds, indent=2))
    return creds


def load(state_dir: Path) -> dict[str, Any] | None:
    try:
        stored: dict[str, Any] = json.loads((state_dir / "devices.json").read_text())
    except (OSError, ValueError):
        return None
    return stored


def tls_info(infra: Infra, creds: dict[str, Any] | None) -> dict[str, Any] | None:
    """How a certificate device connects (``dev status --json`` ``mqtt_tls``)."""
    if not infra.mqtt_managed:
        return None
    broker = infra.mosquitto
    cert = next(((d, c) for d, c in sorted((creds or {}).items()) if c["auth"] == "cert"), None)
    return {
        "host": infra.mqtt_host,
        "port": broker.tls_port,
        "ca_file": str(broker.ca_file),
        "ca_dir": str(broker.ca_dir),
        "device_id": cert[0] if cert else None,
        "cert_file": cert[1]["cert_file"] if cert else None,
        "key_file": cert[1]["key_file"] if cert else None,
    }


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class DevicePublishers:
    """One MQTT connection per device, each with the device's own account (username =
    client id = device id): what the simulator publishes through, as ``Publishing``
    (``publish`` goes to the topic's device; ``wait`` waits on each connection's acks)."""

    def __init__(self, mqtt_url: str, creds: dict[str, dict[str, Any]]) -> None:
        from edgecloud.adapters.mqtt import MqttConfig, make_publisher
        from edgecloud.core.settings import mqtt_client_options

        opts = mqtt_client_options()
        self._pubs = {
            device: make_publisher(
                MqttConfig.from_url(mqtt_url, username=device, password=c["password"], **opts),
                client_id=device,
            )
            for device, c in creds.items()
            if c.get("auth") == "password"
        }

    def start(self) -> None:
        for pub in self._pubs.values():
            pub.start()

    def stop(self) -> None:
        for pub in self._pubs.values():
            pub.stop()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> Any:
        device = topic.split("/")[1]
        return device, self._pubs[device].publish(topic, payload, qos)

    def wait(self, infos: Any, timeout_s: float = 30.0) -> None:
        by_device: dict[str, list[Any]] = {}
        for device, info in infos:
            by_device.setdefault(device, []).append(info)
        for device, pending in by_device.items():
            self._pubs[device].wait(pending, timeout_s)
