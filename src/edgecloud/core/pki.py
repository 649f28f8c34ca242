"""The fleet CA and device certificates (issue 16), with the ``cryptography`` package.

``init_ca(dir)`` writes ``ca.key`` (0600) and ``ca.pem`` into a folder outside the repository
(``edgecloud ca init``: the config dir by default). ``issue(ca, device_id)`` makes a key pair
and a certificate whose CN is the device id (the broker's ``use_identity_as_username`` maps it
to the device's account); ``sign_csr(ca, device_id, pem)`` signs a device's own key, so the
private key never leaves the device, and refuses a CSR whose CN is not the device id.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgecloud.core.errors import ConfigError, ValidationFailed

CA_KEY, CA_CERT = "ca.key", "ca.pem"


@dataclass(frozen=True)
class CA:
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    cert_pem: str
    key_pem: str | None  # None when the device sent a CSR (its key stays on the device)
    sha256: str
    serial: str
    not_after: datetime


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def init_ca(folder: Path, name: str = "edgecloud fleet CA", days: int = 3650) -> CA:
    """Create the CA in ``folder``; refuses to overwrite one that exists."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (folder / CA_KEY).exists() or (folder / CA_CERT).exists():
        raise ConfigError(f"a CA exists already in {folder}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(folder / CA_KEY, pem)
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(key, cert)


def load_ca(folder: Path) -> CA:
    try:
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"no CA in {folder} (run `edgecloud ca init`)") from exc
    except ValueError as exc:
        raise ConfigError(f"the CA in {folder} does not load: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"the CA key in {folder} is not an EC key")
    return CA(key, cert)


def _sign(
    ca: CA, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int, server: bool
) -> x509.Certificate:
    now = datetime.now(UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca.key, hashes.SHA256())


def _issued(cert: x509.Certificate, key_pem: str | None) -> Issued:
    return Issued(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key_pem,
        sha256=fingerprint(cert),
        serial=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc,
    )


def issue(ca: CA, cn: str, days: int = 825, server: bool = False) -> Issued:
    """A new key pair and its certificate (CN = ``cn``) signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(ca, _name(cn), key.public_key(), days, server)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return _issued(cert, key_pem)


def sign_csr(ca: CA, device_id: str, csr_pem: bytes, days: int = 825) -> Issued:
    """Sign a device's CSR; its CN must be the device id and its signature must verify."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ValidationFailed("bad_csr", f"not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ValidationFailed("bad_csr", "the CSR's signature does not verify")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    if cn != device_id:
        raise ValidationFailed("csr_cn_mismatch", f"the CSR's CN is {cn!r}, not {device_id!r}")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValidationFailed("bad_csr", "only EC (P-256) keys are accepted")
    return _issued(_sign(ca, _name(device_id), public_key, days, False), None)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def parse_device_cert(pem: str, device_id: str) -> x509.Certificate:
    """A certificate sent to the registry: PEM, CN = the device id."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValidationFailed("bad_cert", f"not a PEM certificate: {exc}") from exc
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else None
    if cn != device_id:
        raise ValidationFailed(
            "cert_cn_mismatch", f"the certificate's CN is {cn!r}, not {device_id!r}"
        )
    return cert


def crl(ca: CA, serials: list[str], days: int = 30) -> bytes:
    """A CRL revoking ``serials`` (hex), for the broker's ``crlfile``."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=days))
    )
    for serial in serials:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(now)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
