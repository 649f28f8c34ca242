"""The device registry's REST routes on SQLite: add (one, bulk, cert), list, show with its
audit, revoke, the node's own credentials, node isolation, and bad input (nothing written)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlmodel import Session

from edgecloud.cloud import auth
from edgecloud.cloud.api import create_app
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.devices.service import mosquitto_hash
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core import pki
from edgecloud.core.errors import ValidationFailed

R = "/api/v1/devices/registry"


@dataclass
class Api:
    c: TestClient
    op: dict[str, str]
    read: dict[str, str]
    node_a: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with TestClient(create_app(CloudSettings(database_url=url))) as c:
        engine = make_engine(url)
        with Session(engine) as session:
            hdr = {}
            for scope, node in (("operate", None), ("read", None), ("node", "edge-a")):
                token, _ = auth.create_token(session, scope, "ops", node)  # type: ignore[arg-type]
                hdr[scope] = {"Authorization": f"Bearer {token}"}
        engine.dispose()
        yield Api(c, hdr["operate"], hdr["read"], hdr["node"])


def _count(api: Api) -> int:
    return len(api.c.get(R, headers=api.op).json()["items"])


def test_add_list_show_revoke_and_the_node_view(api: Api) -> None:
    res = api.c.post(
        R,
        json={"devices": [{"device_id": "press-01", "node_id": "edge-a", "labels": {"line": "3"}}]},
        headers=api.op,
    )
    assert res.status_code == 201, res.text
    item = res.json()["items"][0]
    assert item["auth"] == "password" and len(item["password"]) >= 32
    node = api.c.get("/api/v1/nodes/edge-a/devices", headers=api.node_a).json()
    [dev] = node["devices"]
    assert dev["device_id"] == "press-01" and item["password"] not in str(node)
    _, _, iters, salt, digest = dev["password_hash"].split("$")
    expect = hashlib.pbkdf2_hmac(
        "sha512", item["password"].encode(), base64.b64decode(salt), int(iters)
    )
    assert base64.b64decode(digest) == expect  # the broker's hash of exactly that password
    assert "password" not in api.c.get(f"{R}/press-01", headers=api.op).json()
    desired = api.c.get("/api/v1/nodes/edge-a/desired", headers=api.node_a)
    assert desired.json()["devices"]["count"] == 1
    etag = desired.headers["etag"]
    res = api.c.delete(f"{R}/press-01", headers=api.op)
    assert res.status_code == 200 and res.json()["revoked_by"] == "ops"
    assert api.c.get("/api/v1/nodes/edge-a/devices", headers=api.node_a).json()["devices"] == []
    again = api.c.get("/api/v1/nodes/edge-a/desired", headers={**api.node_a, "If-None-Match": etag})
    assert again.status_code == 200  # the revocation changed the node's desired state
    audit = api.c.get(f"{R}/press-01", headers=api.op).json()["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [("add", "ops"), ("revoke", "ops")]
    assert api.c.get("/api/v1/devices", headers=api.read).json()["items"] == []  # unchanged


def test_scopes_and_node_isolation(api: Api) -> None:
    body = {"devices": [{"device_id": "d1", "node_id": "edge-b"}]}
    assert api.c.post(R, json=body, headers=api.read).status_code == 403
    assert api.c.post(R, json=body, headers=api.node_a).status_code == 403
    assert api.c.post(R, json=body, headers=api.op).status_code == 201
    res = api.c.get("/api/v1/nodes/edge-b/devices", headers=api.node_a)
    assert res.status_code == 403 and res.json()["error"] == "forbidden"
    assert api.c.get("/api/v1/nodes/edge-b/desired", headers=api.node_a).status_code == 403
    assert api.c.get(R, headers=api.node_a).status_code == 403


def test_bulk_is_all_or_nothing(api: Api) -> None:
    many = [{"device_id": f"s-{i:04d}", "node_id": "edge-a"} for i in range(1500)]
    res = api.c.post(R, json={"devices": many}, headers=api.op)
    assert res.status_code == 201 and len(res.json()["items"]) == 1500
    page = api.c.get(R, params={"limit": 1000}, headers=api.op).json()
    rest = api.c.get(R, params={"cursor": page["next_cursor"]}, headers=api.op).json()
    assert len(page["items"]) + len(rest["items"]) == 1500
    bad = [
        {"device_id": "new-1", "node_id": "edge-a"},
        {"device_id": "s-0007", "node_id": "edge-a"},
    ]
    res = api.c.post(R, json={"devices": bad}, headers=api.op)
    assert res.status_code == 409 and "s-0007" in res.json()["detail"]
    assert api.c.get(f"{R}/new-1", headers=api.op).status_code == 404  # nothing half-written


@pytest.mark.parametrize(
    ("devices", "status", "error"),
    [
        ([{"device_id": "a b", "node_id": "edge-a"}], 400, "bad_device_id"),
        ([{"device_id": "x" * 65, "node_id": "edge-a"}], 400, "bad_device_id"),
        ([{"device_id": "ok", "node_id": "edge/a"}], 400, "bad_node_id"),
        ([{"device_id": "ok", "node_id": "edge-a", "labels": {"a b": "c"}}], 400, "bad_labels"),
        ([{"device_id": "ok", "node_id": "edge-a"}] * 2, 409, "duplicate_device"),
        ([{"device_id": "ok", "node_id": "edge-a", "cert_pem": "junk"}], 400, "bad_cert"),
        ([], 422, "invalid_request"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    api: Api, devices: list[dict[str, object]], status: int, error: str
) -> None:
    res = api.c.post(R, json={"devices": devices}, headers=api.op)
    assert (res.status_code, res.json()["error"]) == (status, error), res.text
    assert _count(api) == 0


def test_certificate_device_and_csr(api: Api, tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(Exception, match="exists already"):
        pki.init_ca(tmp_path / "ca")
    issued = pki.issue(pki.load_ca(tmp_path / "ca"), "cam-01")
    res = api.c.post(
        R,
        json={
            "devices": [{"device_id": "cam-01", "node_id": "edge-a", "cert_pem": issued.cert_pem}]
        },
        headers=api.op,
    )
    assert res.status_code == 201 and res.json()["items"][0]["password"] is None
    assert res.json()["items"][0]["cert_sha256"] == issued.sha256
    other = pki.issue(ca, "cam-99")
    res = api.c.post(
        R,
        json={
            "devices": [{"device_id": "cam-02", "node_id": "edge-a", "cert_pem": other.cert_pem}]
        },
        headers=api.op,
    )
    assert res.status_code == 400 and res.json()["error"] == "cert_cn_mismatch"
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam-03")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    signed = pki.sign_csr(ca, "cam-03", csr)
    assert signed.key_pem is None
    cert = x509.load_pem_x509_certificate(signed.cert_pem.encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    cert.verify_directly_issued_by(ca.cert)
    with pytest.raises(ValidationFailed) as err:
        pki.sign_csr(ca, "cam-04", csr)
    assert err.value.reason == "csr_cn_mismatch"


def test_mosquitto_hash_format() -> None:
    line = mosquitto_hash("secret", salt=b"0" * 12)
    assert line.startswith("$7$101$MDAwMDAwMDAwMDAw$") and len(line.split("$")) == 5
