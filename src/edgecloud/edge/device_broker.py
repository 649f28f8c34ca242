"""Applying the node's device set to its Mosquitto, without a restart (issue 16).

Each device is a dynamic-security client (username and client id = the device id, no
password of its own) with a role of its own that allows publishing
``devices/{id}/telemetry`` and nothing else; the plugin's default ACL denies everything
else, subscriptions included. The plugin's runtime commands take only clear passwords, so a
password device's ``$7$`` hash goes into the broker's ``password_file`` instead, which
Mosquitto re-reads on SIGHUP: a dynsec client without a password defers authentication to
that file (checked on Mosquitto 2.0.11). Nothing here ever sees a device's password.

Order, so that no moment admits what it should not:
  removed devices: ``disableClient`` (the plugin disconnects them and refuses them at once),
  then the password file without them (SIGHUP), then ``deleteClient`` / ``deleteRole``;
  added devices: the password file with them (SIGHUP), then ``createRole`` / ``createClient``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgecloud.core.errors import TransportError

log = logging.getLogger(__name__)
HARMLESS = ("already exists", "not found")


class Control(Protocol):
    def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Device:
    device_id: str
    auth: str
    password_hash: str | None = None
    cert_sha256: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Device:
        return cls(
            str(raw["device_id"]),
            str(raw["auth"]),
            raw.get("password_hash"),
            raw.get("cert_sha256"),
        )


@dataclass
class Plan:
    add: list[Device] = field(default_factory=list)
    change: list[Device] = field(default_factory=list)  # same id, other hash / certificate
    remove: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.remove)


def plan(applied: dict[str, Device], wanted: Iterable[Device]) -> Plan:
    p = Plan()
    want = {d.device_id: d for d in wanted}
    for device_id, dev in sorted(want.items()):
        old = applied.get(device_id)
        if old is None:
            p.add.append(dev)
        elif old != dev:
            p.change.append(dev)
    p.remove = sorted(set(applied) - set(want))
    return p


def role_of(device_id: str) -> str:
    return f"device-{device_id}"


def create_commands(devices: Iterable[Device]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d in devices:
        acl = {
            "acltype": "publishClientSend",
            "topic": f"devices/{d.device_id}/telemetry",
            "priority": 0,
            "allow": True,
        }
        out.append({"command": "createRole", "rolename": role_of(d.device_id), "acls": [acl]})
        out.append(
            {
                "command": "createClient",
                "username": d.device_id,
                "clientid": d.device_id,
                "roles": [{"rolename": role_of(d.device_id)}],
            }
        )
    return out


class MosquittoDevices:
    """The broker side: its ``password_file`` (device lines only; other accounts are kept as
    they are) and the dynamic security plugin (``control``)."""

    def __init__(self, control: Control, password_file: Path, pid_file: Path | None) -> None:
        self.control = control
        self.password_file = password_file
        self.pid_file = pid_file

    def apply(self, p: Plan, wanted: dict[str, Device], managed: set[str]) -> None:
        if p.remove:
            self._send([{"command": "disableClient", "username": d} for d in p.remove])
        self.write_passwords(wanted, managed | set(p.remove))
        if p.remove:
            self._send(
                [
                    c
                    for d in p.remove
                    for c in (
                        {"command": "deleteClient", "username": d},
                        {"command": "deleteRole", "rolename": role_of(d)},
                    )
                ]
            )
        if p.add:
            self._send(create_commands(p.add))

    def _send(self, commands: list[dict[str, Any]]) -> None:
        for answer in self.control.send(commands):
            error = answer.get("error")
            if error and not any(h in str(error).lower() for h in HARMLESS):
                raise TransportError(f"dynamic security {answer.get('command')}: {error}")

    def write_passwords(self, wanted: dict[str, Device], managed: set[str]) -> None:
        """Rewrite the password file atomically (same owner and mode), then SIGHUP. Under a
        lock beside it: the agents of several nodes on one broker (the local stack) each
        rewrite their own lines of the same file."""
        lock = self.password_file.with_name(self.password_file.name + ".lock")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            self._write_passwords(wanted, managed)

    def _write_passwords(self, wanted: dict[str, Device], managed: set[str]) -> None:
        path = self.password_file
        try:
            old = path.read_text().splitlines()
            st: os.stat_result | None = path.stat()
        except FileNotFoundError:
            old, st = [], None
        drop = managed | set(wanted)
        keep = [ln for ln in old if ln.strip() and ln.split(":", 1)[0] not in drop]
        lines = keep + [
            f"{d.device_id}:{d.password_hash}"
            for d in wanted.values()
            if d.auth == "password" and d.password_hash
        ]
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o777)
            if os.geteuid() == 0:
                os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
        self._reload()

    def _reload(self) -> None:
        if self.pid_file is None:
            return
        try:
            pid = int(self.pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError, IndexError) as exc:
            raise TransportError(f"cannot signal the broker ({self.pid_file}): {exc}") from exc
