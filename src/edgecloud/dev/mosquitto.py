"""Mosquitto from the distribution's packages, configured from ``deploy/mosquitto/*.tmpl``.

Files live in ``<state>/mosquitto/`` (config, hashed password file, ACL, persistence). As root
the broker runs as the ``mosquitto`` OS user, which owns that directory (see ``base.run_as``).
Readiness is a real MQTT CONNECT as ``admin`` answered by CONNACK 0; the packet is built here
by hand so that ``dev`` needs no MQTT SDK (import-linter keeps paho in ``adapters``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import string
import struct
import subprocess
import time
from pathlib import Path

from edgecloud.core.errors import ServiceError
from edgecloud.core.readings import DEFAULT_MAX_PAYLOAD_BYTES, broker_message_limit
from edgecloud.dev import process
from edgecloud.dev.base import HOST, Ports, Service, chown_tree, repo_deploy_dir, run_as

OS_USER = "mosquitto"
DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
# The plugin's file before the agent adds devices: no clients, and a default ACL that denies
# a device client everything its role does not allow: publishing, subscribing AND receiving
# (the plugin's own default lets a client receive whatever it subscribed to). Accounts that
# are not dynsec clients (agent, bridge...) are decided by the ACL file.
DYNSEC_EMPTY = {
    "defaultACLAccess": {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    },
    "clients": [],
    "groups": [],
    "roles": [],
}
ACCOUNTS = ("admin", "edge-agent", "bridge", "simulator")


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def mqtt_connect_ok(
    host: str, port: int, username: str, password: str, timeout: float = 2.0
) -> bool:
    """True when the broker accepts an MQTT 3.1.1 CONNECT with these credentials."""
    client_id = f"edgecloud-probe-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    body = _utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 10)
    body += _utf8(client_id) + _utf8(username) + _utf8(password)
    packet = bytes([0x10, len(body)]) + body if len(body) < 128 else b""
    if not packet:
        raise ValueError("credentials too long for the probe")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            reply = sock.recv(4)
            ok = len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0
            if ok:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return ok
    except OSError:
        return False


class MosquittoService(Service):
    name = "mosquitto"
    ready_timeout = 30.0

    def __init__(self, state_dir: Path, ports: Ports, max_payload_bytes: int | None = None) -> None:
        super().__init__(state_dir, ports)
        self.max_payload_bytes = max_payload_bytes or agent_max_payload_bytes()

    @property
    def message_size_limit(self) -> int:
        """The broker's limit, from the same setting as the agents' (``too_large`` above it)."""
        return broker_message_limit(self.max_payload_bytes)

    @property
    def port(self) -> int:
        return self.ports.mqtt

    @property
    def home(self) -> Path:
        return self.state_dir / "mosquitto"

    @property
    def password_file(self) -> Path:
        return self.home / "passwd"

    @property
    def dynsec_file(self) -> Path:
        return self.home / "dynamic-security.json"

    def account(self, name: str) -> tuple[str, str]:
        return name, str(self.secrets["mqtt"][name])

    def prepare(self) -> None:
        binary = "/usr/sbin/mosquitto"
        if not Path(binary).exists() and not _which("mosquitto"):
            raise ServiceError("mosquitto not found (make install installs it)")
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        deploy = repo_deploy_dir() / "mosquitto"
        values = {
            "port": str(self.port),
            "password_file": str(self.password_file),
            "acl_file": str(self.home / "acl"),
            "persistence_dir": str(data),
            "message_size_limit": str(self.message_size_limit),
            "dynsec_plugin": dynsec_plugin(),
            "dynsec_file": str(self.dynsec_file),
        }
        if not self.dynsec_file.exists():
            self.dynsec_file.write_text(json.dumps(DYNSEC_EMPTY, indent=2))
        for name, target in (("mosquitto.conf.tmpl", "mosquitto.conf"), ("acl.tmpl", "acl")):
            text = string.Template((deploy / name).read_text()).substitute(values)
            (self.home / target).write_text(text)
        if not self.password_file.exists():
            lines = "".join(f"{n}:{self.secrets['mqtt'][n]}\n" for n in ACCOUNTS)
            self.password_file.write_text(lines)
            _passwd("-U", str(self.password_file))  # hash every line in place
        self._own()

    def _own(self) -> None:
        for path in (
            self.password_file,
            self.home / "acl",
            self.home / "mosquitto.conf",
            self.dynsec_file,
        ):
            path.chmod(0o600)
        self.home.chmod(0o700)
        chown_tree(self.home, OS_USER)

    def argv(self) -> list[str]:
        return [
            *run_as(OS_USER),
            _which("mosquitto") or "/usr/sbin/mosquitto",
            "-c",
            str(self.home / "mosquitto.conf"),
        ]

    def healthy(self) -> bool:
        return mqtt_connect_ok(HOST, self.port, *self.account("admin"))

    def add_user(self, username: str, password: str) -> None:
        """Add (or re-password) an account, reload the broker, wait until it is accepted."""
        _passwd("-b", str(self.password_file), username, password)
        self._own()
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGHUP)
        process.wait_until(
            lambda: mqtt_connect_ok(HOST, self.port, username, password),
            10.0,
            f"mosquitto reload for {username!r}",
        )


def agent_max_payload_bytes() -> int:
    """The agents' ``EDGECLOUD_MAX_PAYLOAD_BYTES`` as the apps of this stack will read it."""
    raw = os.environ.get("EDGECLOUD_MAX_PAYLOAD_BYTES", "").strip()
    try:
        return int(raw) if raw else DEFAULT_MAX_PAYLOAD_BYTES
    except ValueError as exc:
        raise ServiceError(f"EDGECLOUD_MAX_PAYLOAD_BYTES={raw!r} is not an integer") from exc


def dynsec_plugin() -> str:
    """The dynamic security plugin of the distribution's mosquitto package."""
    for directory in (
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/usr/local/lib",
    ):
        candidate = Path(directory) / DYNSEC_PLUGIN
        if candidate.exists():
            return str(candidate)
    raise ServiceError(f"{DYNSEC_PLUGIN} not found (make install installs mosquitto)")


def _which(name: str) -> str | None:
    for directory in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return None


def _passwd(*args: str) -> None:
    tool = _which("mosquitto_passwd")
    if tool is None:
        raise ServiceError("mosquitto_passwd not found (make install installs mosquitto)")
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"mosquitto_passwd {args[0]} failed: {done.stderr.strip()}")
