"""``edgecloud device`` / ``ca`` bad input: a clear CLI error before anything is sent (the
API URL points at a closed port, so a request would fail with another message)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from edgecloud.cli import app
from edgecloud.cli.device import read_csv

NOWHERE = ["--api-url", "http://127.0.0.1:9", "--token", "ecl_operate_x" + "y" * 30]


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), terminal_width=200)
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("device_id,node_id\npress-1,edge-a\npress 2,edge-a\n", ":3: device id 'press 2'"),
        ("press-1,edge-a\npress-2\n", ":2: want device_id,node_id[,labels]"),
        ("press-1,edge-a,line\n", ":1: label 'line' is not key=value"),
        ("press-1,edge-a\npress-1,edge-b\n", ":2: 'press-1' appears twice"),
        ("device_id,node_id\n", "no devices"),
    ],
)
def test_malformed_csv_is_refused_whole(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(rows)
    code, out = _run("device", "add", "--from", str(path), *NOWHERE)
    assert code == 1 and message in out and "cannot reach" not in out
    assert not (tmp_path / "fleet.credentials.csv").exists()


def test_csv_with_labels(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("device_id,node_id,labels\np-1,edge-a,line=3;site=x\np-2,edge-b\n")
    assert read_csv(path) == [
        {"device_id": "p-1", "node_id": "edge-a", "labels": {"line": "3", "site": "x"}},
        {"device_id": "p-2", "node_id": "edge-b", "labels": {}},
    ]


def test_ca_init_and_csr_with_the_wrong_cn(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    code, out = _run("ca", "init", "--ca-dir", str(ca))
    assert (
        code == 0 and (ca / "ca.pem").exists() and (ca / "ca.key").stat().st_mode & 0o777 == 0o600
    )
    code, out = _run("ca", "init", "--ca-dir", str(ca))
    assert code == 1 and "exists already" in out
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "dev.csr").write_bytes(csr)
    code, out = _run(
        "device",
        "add",
        "cam-1",
        "--node",
        "edge-a",
        "--csr",
        str(tmp_path / "dev.csr"),
        "--ca-dir",
        str(ca),
        "--out",
        str(tmp_path / "out"),
        *NOWHERE,
    )
    assert code == 1 and "CN is 'someone-else', not 'cam-1'" in out
    assert not (tmp_path / "out" / "cam-1.pem").exists()
    code, out = _run("device", "add", "bad id", "--node", "edge-a", *NOWHERE)
    assert code == 1 and "device id 'bad id'" in out
