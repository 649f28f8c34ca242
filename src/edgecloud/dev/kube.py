"""A real Kubernetes API server for the test stack: etcd + kube-apiserver on loopback.

The binaries are the ones ``make install`` builds (``scripts/build-k8s.sh``, cached in
``~/.cache/edgecloud/k8s/<version>/``). Everything lives in ``<state>/kube/``: etcd's data, a
CA and the server's certificate, the service-account key pair (made at first start), a static
token file and ``kubeconfig`` (the admin). Authorization is RBAC only: the token ``admin`` is in
``system:masters``; ``limited`` is in no group, so it may do only what a test's RoleBinding
grants it. No kubelet or controllers run: objects are stored and admitted, pods never start
(``StorageObjectInUseProtection`` is off, its finalizer would wait for a controller forever).
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from edgecloud.core.errors import ServiceError
from edgecloud.dev import process
from edgecloud.dev.base import HOST, Ports, Service

K8S_VERSION = "v1.34.2"
# Users of the static token file: name -> groups.
USERS = {"admin": "system:masters", "limited": ""}


def k8s_bin_dir() -> Path:
    """Where ``scripts/build-k8s.sh`` put the binaries (``EDGECLOUD_K8S_BIN`` overrides)."""
    env = os.environ.get("EDGECLOUD_K8S_BIN")
    if env:
        return Path(env)
    cache = os.environ.get("EDGECLOUD_K8S_CACHE") or str(Path.home() / ".cache/edgecloud/k8s")
    return Path(cache) / K8S_VERSION


def k8s_binary(name: str) -> str:
    path = k8s_bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ServiceError(f"{path} not found: `make install` (scripts/build-k8s.sh) builds it")
    return str(path)


@dataclass(frozen=True)
class KubePorts:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @classmethod
    def load_or_pick(cls, home: Path) -> KubePorts:
        """The ports of this state dir, chosen once (a restart finds the same server)."""
        path = home / "ports.json"
        if path.exists():
            return cls(**json.loads(path.read_text()))
        base = process.free_port_block(3)
        ports = cls(base, base + 1, base + 2)
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports.__dict__))
        return ports


class EtcdService(Service):
    name = "etcd"
    ready_timeout = 60.0

    def __init__(self, state_dir: Path, ports: Ports, kube: KubePorts) -> None:
        super().__init__(state_dir, ports)
        self.kube = kube

    @property
    def port(self) -> int:
        return self.kube.etcd_client

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def prepare(self) -> None:
        (self.state_dir / "kube" / "etcd").mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        peer = f"http://{HOST}:{self.kube.etcd_peer}"
        return [
            k8s_binary("etcd"),
            "--name=edgecloud",
            f"--data-dir={self.state_dir / 'kube' / 'etcd'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=edgecloud={peer}",
            "--log-level=warn",
        ]

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False


class KubeApiServerService(Service):
    name = "kube-apiserver"
    ready_timeout = 180.0  # first start on a loaded 2-core box: bootstrap RBAC, CRD informers

    def __init__(self, state_dir: Path, ports: Ports, kube: KubePorts, etcd_url: str) -> None:
        super().__init__(state_dir, ports)
        self.kube = kube
        self.etcd_url = etcd_url

    @property
    def port(self) -> int:
        return self.kube.apiserver

    @property
    def home(self) -> Path:
        return self.state_dir / "kube"

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def tokens(self) -> dict[str, str]:
        """user -> bearer token (made once, ``<state>/kube/tokens.json``, mode 0600)."""
        path = self.home / "tokens.json"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({u: secrets.token_hex(24) for u in USERS}))
            path.chmod(0o600)
        data: dict[str, str] = json.loads(path.read_text())
        return data

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.home / "server.crt").exists():
            _write_pki(self.home)
        lines = [f'{tok},{user},{user},"{USERS[user]}"' for user, tok in self.tokens().items()]
        (self.home / "tokens.csv").write_text("\n".join(lines) + "\n")
        (self.home / "tokens.csv").chmod(0o600)
        self.write_kubeconfig(self.home / "kubeconfig", "admin")

    def write_kubeconfig(self, path: Path, user: str, token: str | None = None) -> Path:
        """A kubeconfig for ``user`` (context ``edgecloud-test``); ``token`` overrides its own."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "edgecloud-test",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self.home / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token or self.tokens()[user]}}],
            "contexts": [
                {"name": "edgecloud-test", "context": {"cluster": "edgecloud-test", "user": user}}
            ],
            "current-context": "edgecloud-test",
        }
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        path.chmod(0o600)
        return path

    def argv(self) -> list[str]:
        home = self.home
        return [
            k8s_binary("kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={home / 'server.crt'}",
            f"--tls-private-key-file={home / 'server.key'}",
            f"--client-ca-file={home / 'ca.crt'}",
            f"--token-auth-file={home / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            f"--service-account-key-file={home / 'sa.pub'}",
            f"--service-account-signing-key-file={home / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=StorageObjectInUseProtection",
            "--profiling=false",
            f"--cert-dir={home / 'certs'}",
        ]

    def healthy(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.home / "ca.crt"))
        request = urllib.request.Request(
            self.url + "/readyz", headers={"Authorization": f"Bearer {self.tokens()['admin']}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=3, context=context) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False


class KubeCluster:
    """etcd + kube-apiserver of one state dir, started and stopped together."""

    def __init__(self, state_dir: Path, ports: Ports | None = None) -> None:
        ports = ports or Ports(0, 0, 0, 0)  # the infra ports: unused, Service wants them
        self.kube = KubePorts.load_or_pick(state_dir / "kube")
        self.etcd = EtcdService(state_dir, ports, self.kube)
        self.apiserver = KubeApiServerService(state_dir, ports, self.kube, self.etcd.url)

    @property
    def kubeconfig(self) -> Path:
        return self.apiserver.home / "kubeconfig"

    def start(self) -> None:
        self.etcd.start()
        self.apiserver.start()

    def stop(self) -> None:
        self.apiserver.stop()
        self.etcd.stop()


def _write_pki(home: Path) -> None:
    """A CA, the server's certificate (127.0.0.1, localhost) and the service-account keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgecloud-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(IPv4Address(HOST))]
    names.append(x509.IPAddress(IPv4Address("10.96.0.1")))  # the kubernetes Service's IP
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": pem_key(ca_key),
        "server.crt": cert.public_bytes(serialization.Encoding.PEM),
        "server.key": pem_key(key),
        "sa.key": pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in files.items():
        (home / name).write_bytes(data)
        (home / name).chmod(0o600)
