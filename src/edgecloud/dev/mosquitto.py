"""Mosquitto from the distribution's packages, configured from ``deploy/mosquitto/*.tmpl``.

Files live in ``<state>/mosquitto/`` (config, hashed password file, ACL, persistence). As root
the broker runs as the ``mosquitto`` OS user, which owns that directory (see ``base.run_as``).
Readiness is a real MQTT CONNECT as ``admin`` answered by CONNACK 0; the packet is built here
by hand so that ``dev`` needs no MQTT SDK (import-linter keeps paho in ``adapters``).

Issue 16: a second listener on MQTT port + 1 takes only TLS clients with a certificate of the
fleet CA (``<state>/ca``, made here if missing; CN = device id = username = client id); its
server certificate and CRL live in ``<state>/mosquitto/tls``. Each edge node has its own
accounts (``agent@NODE``, ``bridge@NODE``: ``add_node``) limited to its own events topic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import string
import struct
import subprocess
import time
from pathlib import Path

from edgecloud.core import pki
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
DYNSEC_ACCOUNT = "dynsec"
ACCOUNTS = ("admin", "edge-agent", "bridge", "simulator", DYNSEC_ACCOUNT)
# An account name no device id can take ("@" is not in core.readings.ID_PATTERN).
NODE_ROLES = ("agent", "bridge")


def node_account(role: str, node_id: str) -> str:
    """``agent@edge-1``: the node's own account (``role`` in ``NODE_ROLES``)."""
    return f"{role}@{node_id}"


def node_acl(node_id: str) -> str:
    """The ACL block of one node's accounts: its agent reads device telemetry (the devices'
    dynsec roles decide who may write it) and writes only its own events; its bridge reads
    only its own events."""
    return (
        f"user {node_account('agent', node_id)}\n"
        "topic read devices/+/telemetry\n"
        f"topic write edgecloud/{node_id}/events/#\n\n"
        f"user {node_account('bridge', node_id)}\n"
        f"topic read edgecloud/{node_id}/events/#\n\n"
    )


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

    @property
    def tls_port(self) -> int:
        """The certificate listener: MQTT port + 1."""
        return self.port + 1

    @property
    def ca_dir(self) -> Path:
        """The local stack's fleet CA (``edgecloud device add --cert --ca-dir`` this)."""
        return self.state_dir / "ca"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def crl_file(self) -> Path:
        return self.tls_dir / "crl.pem"

    @property
    def nodes_file(self) -> Path:
        return self.home / "nodes.json"

    def account(self, name: str) -> tuple[str, str]:
        """A stack account; names not stored in ``secrets.json`` (``dynsec``, the nodes'
        ``agent@NODE``) get a password derived from the admin's, so older state dirs and
        concurrent processes agree on it without writing anything."""
        stored = self.secrets["mqtt"].get(name)
        if stored is not None:
            return name, str(stored)
        key = str(self.secrets["mqtt"]["admin"]).encode()
        return name, hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32]

    def nodes(self) -> list[str]:
        try:
            return sorted(json.loads(self.nodes_file.read_text()))
        except (OSError, ValueError):
            return []

    def prepare(self) -> None:
        binary = "/usr/sbin/mosquitto"
        if not Path(binary).exists() and not _which("mosquitto"):
            raise ServiceError("mosquitto not found (make install installs it)")
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._prepare_tls()
        deploy = repo_deploy_dir() / "mosquitto"
        values = {
            "port": str(self.port),
            "tls_port": str(self.tls_port),
            "ca_file": str(self.ca_file),
            "cert_file": str(self.tls_dir / "server.pem"),
            "key_file": str(self.tls_dir / "server.key"),
            "crl_file": str(self.crl_file),
            "password_file": str(self.password_file),
            "acl_file": str(self.home / "acl"),
            "persistence_dir": str(data),
            "message_size_limit": str(self.message_size_limit),
            "dynsec_plugin": dynsec_plugin(),
            "dynsec_file": str(self.dynsec_file),
        }
        if not self.dynsec_file.exists():
            self.dynsec_file.write_text(json.dumps(DYNSEC_EMPTY, indent=2))
        (self.home / "mosquitto.conf").write_text(
            string.Template((deploy / "mosquitto.conf.tmpl").read_text()).substitute(values)
        )
        self._write_acl()
        if not self.password_file.exists():
            self.password_file.write_text("")
        self._ensure_passwords([*ACCOUNTS, *self._node_accounts(self.nodes())])
        self._own()

    def _prepare_tls(self) -> None:
        """The fleet CA (if missing), the server certificate and a CRL signed by that CA."""
        if not (self.ca_dir / pki.CA_KEY).exists():
            pki.init_ca(self.ca_dir, name="edgecloud dev fleet CA")
        ca = pki.load_ca(self.ca_dir)
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_bytes(ca.pem)
        server = self.tls_dir / "server.pem"
        if (
            not server.exists()
            or server.stat().st_mtime < (self.ca_dir / pki.CA_CERT).stat().st_mtime
        ):
            issued = pki.issue(ca, "localhost", server=True)
            (self.tls_dir / "server.key").write_text(issued.key_pem or "")
            server.write_text(issued.cert_pem)
        if not self.crl_file.exists():
            self.crl_file.write_bytes(pki.crl(ca, []))

    def write_crl(self, serials: list[str]) -> None:
        """Revoke these certificate serials (hex) at the TLS listener; SIGHUP re-reads it."""
        self.crl_file.write_bytes(pki.crl(pki.load_ca(self.ca_dir), serials))
        self._own()
        self._reload()

    @staticmethod
    def _node_accounts(nodes: list[str]) -> list[str]:
        return [node_account(role, n) for n in nodes for role in NODE_ROLES]

    @property
    def users_file(self) -> Path:
        return self.home / "users.json"

    def hand_added(self) -> list[str]:
        """Accounts added with ``add_user`` (tests' devices): each may write its own
        telemetry topic, an explicit line per account (no pattern for every username)."""
        try:
            return sorted(json.loads(self.users_file.read_text()))
        except (OSError, ValueError):
            return []

    def _write_acl(self) -> None:
        template = (repo_deploy_dir() / "mosquitto" / "acl.tmpl").read_text()
        named = {ln.split()[1] for ln in template.splitlines() if ln.startswith("user ")}
        blocks = "".join(node_acl(n) for n in self.nodes()) + "".join(
            f"user {u}\ntopic write devices/{u}/telemetry\n\n"
            for u in self.hand_added()
            if u not in named
        )
        text = string.Template(template).substitute(node_accounts=blocks)
        (self.home / "acl").write_text(text)

    def _ensure_passwords(self, names: list[str]) -> None:
        present = {
            ln.split(":", 1)[0] for ln in self.password_file.read_text().splitlines() if ln.strip()
        }
        for name in names:
            if name not in present:
                _passwd("-b", str(self.password_file), *self.account(name))

    def add_node(self, node_id: str) -> None:
        """Give node ``node_id`` its own accounts (ACL block and passwords), reloading a running
        broker. Callers serialise this (``Infra.add_node_accounts`` holds a lock)."""
        nodes = self.nodes()
        if node_id in nodes:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.nodes_file.write_text(json.dumps(sorted([*nodes, node_id])))
        if not self.password_file.exists():
            return  # prepare() writes both at the first start
        self._write_acl()
        self._ensure_passwords(self._node_accounts([node_id]))
        self._own()
        if self._reload():
            username, password = self.account(node_account("agent", node_id))
            process.wait_until(
                lambda: mqtt_connect_ok(HOST, self.port, username, password),
                10.0,
                f"mosquitto reload for node {node_id!r}",
            )

    def _reload(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGHUP)
        return True

    def _own(self) -> None:
        paths = [self.password_file, self.home / "acl", self.home / "mosquitto.conf"]
        for path in [*paths, self.dynsec_file, self.tls_dir / "server.key"]:
            if path.exists():
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
        if username not in self.hand_added():
            self.users_file.write_text(json.dumps(sorted([*self.hand_added(), username])))
            self._write_acl()
        self._own()
        if not self._reload():
            return
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
