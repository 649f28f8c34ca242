"""Bundle signatures (ed25519) and file digests.

An operator key signs ``sha256(canonical JSON of {"manifest": <raw manifest mapping>,
"file_sha256": <sha256 of the model file or null>})``; the result is ``signature.json`` in the
bundle. Keys: the private key is PKCS#8 PEM, the public key is its 32 raw bytes in base64; the
key id is ``ed25519:`` plus the first 16 hex digits of the sha256 of those raw bytes.

An edge node accepts a bundle only when (1) the model file's sha256 equals the manifest's and
(2) the signature verifies against one of its trusted public keys. Both failures raise
``SignatureError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgecloud.core.errors import SignatureError
from edgecloud.core.manifest import MANIFEST_FILE, SIGNATURE_FILE, Bundle, open_bundle, safe_member

ALGORITHM = "ed25519"
PublicKeyLike = str | bytes | Ed25519PublicKey
TrustedKeys = Mapping[str, Ed25519PublicKey]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def bundle_digest(raw_manifest: Mapping[str, Any], file_digest: str | None) -> bytes:
    return hashlib.sha256(
        canonical_json({"manifest": dict(raw_manifest), "file_sha256": file_digest})
    ).digest()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(raw_public(pub)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(raw_public(key)).hexdigest()[:16]}"


# ---- keys ------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_keypair(
    out_dir: Path, name: str = "operator", *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``{name}.key`` (PEM, mode 0600) and ``{name}.pub`` (base64 raw) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    priv, pub = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if not overwrite and (priv.exists() or pub.exists()):
        raise FileExistsError(f"{priv} or {pub} exists; refusing to overwrite a key")
    key = generate_key()
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
    pub.write_text(public_key_b64(key) + "\n")
    return priv, pub


def load_private_key(source: Path | bytes) -> Ed25519PrivateKey:
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"private key is {type(key).__name__}, not ed25519")
    return key


def _public_from_text(text: str) -> Ed25519PublicKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"public key is {type(key).__name__}, not ed25519")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SignatureError("public key is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise SignatureError(f"raw ed25519 public key must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_public_key(item: PublicKeyLike) -> Ed25519PublicKey:
    """A key object, 32 raw bytes, base64 / PEM text, or a path to a file holding either."""
    if isinstance(item, Ed25519PublicKey):
        return item
    if isinstance(item, bytes):
        if len(item) == 32:
            return Ed25519PublicKey.from_public_bytes(item)
        return _public_from_text(item.decode(errors="replace"))
    looks_b64 = re.fullmatch(r"[A-Za-z0-9+/]{43}=", item.strip()) is not None
    if not looks_b64 and Path(item).expanduser().is_file():
        return _public_from_text(Path(item).expanduser().read_text())
    return _public_from_text(item)


def trusted_keys(
    items: Iterable[PublicKeyLike] | Mapping[str, Ed25519PublicKey] | str,
) -> dict[str, Ed25519PublicKey]:
    """Key id -> key; a string is the comma-separated ``EDGECLOUD_OPERATOR_PUBLIC_KEYS`` form;
    a mapping (an earlier result of this function) passes through, re-keyed by key id."""
    if isinstance(items, Mapping):
        items = list(items.values())
    if isinstance(items, str):
        items = [p.strip() for p in items.split(",") if p.strip()]
    keys = [parse_public_key(i) for i in items]
    return {key_id(k): k for k in keys}


# ---- sign / verify ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    key_id: str
    public_key: str
    file_sha256: str | None
    digest: str
    signature: str
    signed_at: str

    def to_json(self) -> str:
        body = {"algorithm": ALGORITHM, **self.__dict__}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Signature:
        try:
            data = json.loads(text)
            if data.get("algorithm") != ALGORITHM:
                raise SignatureError(
                    f"signature algorithm {data.get('algorithm')!r} is not ed25519"
                )
            fields = {k: data[k] for k in cls.__dataclass_fields__}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SignatureError(f"{SIGNATURE_FILE} is not a valid signature: {exc}") from exc
        for name, value in fields.items():  # wrong JSON types must not reach a dict lookup
            if not (isinstance(value, str) or (name == "file_sha256" and value is None)):
                raise SignatureError(
                    f"{SIGNATURE_FILE}: field {name!r} is {type(value).__name__}, not a string"
                )
            if len(value or "") > 4096:
                raise SignatureError(f"{SIGNATURE_FILE}: field {name!r} is too long")
        try:
            return cls(**fields)
        except TypeError as exc:
            raise SignatureError(f"{SIGNATURE_FILE} is not a valid signature: {exc}") from exc


def _write_sha256(manifest_path: Path, digest: str) -> None:
    text = manifest_path.read_text()
    line = f"sha256: {digest}"
    pattern = re.compile(r"^sha256:.*$", re.MULTILINE)
    text = (
        pattern.sub(line, text, count=1)
        if pattern.search(text)
        else text.rstrip("\n") + f"\n{line}\n"
    )
    manifest_path.write_text(text)


def fill_sha256(folder: Path) -> str | None:
    """Write the model file's sha256 into a manifest that names a ``file`` but has no
    ``sha256`` (``model push`` does this); the digest written, or None when nothing was to do.
    A manifest whose ``sha256`` is wrong is left alone (refused as a mismatch, unless signing
    with ``fix_sha256``)."""
    path = safe_member(folder, MANIFEST_FILE)
    try:
        raw = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return None  # open_bundle says why
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("file"), str)
        or raw.get("sha256") not in (None, "")
    ):
        return None
    model = safe_member(folder, raw["file"])
    if not model.is_file():
        return None
    digest = file_sha256(model)
    _write_sha256(path, digest)
    return digest


def sign_bundle(folder: Path, key: Ed25519PrivateKey, *, fix_sha256: bool = False) -> Signature:
    """Sign ``folder`` and write ``signature.json``.

    With ``fix_sha256`` the manifest's ``sha256`` line is first set to the file's digest;
    without it a mismatch is refused.
    """
    bundle = open_bundle(folder)
    if bundle.model_path is not None:
        actual = file_sha256(bundle.model_path)
        if actual != bundle.manifest.sha256:
            if not fix_sha256:
                raise SignatureError(
                    f"{bundle.manifest.file}: sha256 is {actual}, "
                    f"manifest says {bundle.manifest.sha256}"
                )
            _write_sha256(folder / MANIFEST_FILE, actual)
            bundle = open_bundle(folder)
    digest = bundle_digest(bundle.raw, bundle.manifest.sha256)
    sig = Signature(
        key_id=key_id(key.public_key()),
        public_key=public_key_b64(key),
        file_sha256=bundle.manifest.sha256,
        digest=digest.hex(),
        signature=base64.b64encode(key.sign(digest)).decode(),
        signed_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    bundle.signature_path.write_text(sig.to_json())
    return sig


def check_file_digest(bundle: Bundle) -> str | None:
    """The model file's sha256, after checking it against the manifest."""
    if bundle.model_path is None:
        return None
    actual = file_sha256(bundle.model_path)
    if actual != bundle.manifest.sha256:
        raise SignatureError(
            f"{bundle.manifest.ref}: {bundle.manifest.file} has sha256 {actual}, "
            f"the manifest says {bundle.manifest.sha256} (tampered or corrupt)"
        )
    return actual


def verify_bundle(bundle: Bundle, trusted: TrustedKeys) -> Signature:
    """Check the file digest and the signature; returns the verified signature."""
    actual = check_file_digest(bundle)
    if not bundle.signature_path.is_file():
        raise SignatureError(f"{bundle.manifest.ref}: unsigned (no {SIGNATURE_FILE})")
    sig = Signature.from_json(bundle.signature_path.read_bytes())
    key = trusted.get(sig.key_id)
    if key is None:
        raise SignatureError(
            f"{bundle.manifest.ref}: signed by {sig.key_id}, which is not a trusted key"
        )
    digest = bundle_digest(bundle.raw, actual)
    try:
        key.verify(base64.b64decode(sig.signature, validate=True), digest)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise SignatureError(
            f"{bundle.manifest.ref}: signature by {sig.key_id} does not verify "
            "(manifest or file changed after signing)"
        ) from exc
    return sig
