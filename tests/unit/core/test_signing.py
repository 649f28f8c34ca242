"""ed25519 bundle signatures and file digests, with real keys and real files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from edgecloud.core.errors import SignatureError
from edgecloud.core.manifest import open_bundle
from edgecloud.core.signing import (
    Signature,
    check_file_digest,
    generate_key,
    key_id,
    load_private_key,
    parse_public_key,
    public_key_b64,
    sign_bundle,
    trusted_keys,
    verify_bundle,
    write_keypair,
)

MODEL = b"pretend onnx bytes \x00\x01\x02"


def make_bundle(folder: Path, sha: str | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(MODEL)
    doc = {
        "name": "m",
        "version": "1.0.0",
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": sha or hashlib.sha256(MODEL).hexdigest(),
        "inputs": {"x": {"from": "values", "names": ["a"]}},
        "outputs": {"score": "s"},
        "decision": {"anomaly": {"score_above": 0.5}},
    }
    (folder / "manifest.yaml").write_text("# operator comment\n" + yaml.safe_dump(doc))
    return folder


def test_sign_then_verify(tmp_path: Path) -> None:
    key = generate_key()
    folder = make_bundle(tmp_path / "b")
    sig = sign_bundle(folder, key)
    stored = Signature.from_json((folder / "signature.json").read_text())
    assert stored == sig
    assert sig.key_id == key_id(key.public_key()) and sig.key_id.startswith("ed25519:")
    assert sig.file_sha256 == hashlib.sha256(MODEL).hexdigest()
    verified = verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(key)]))
    assert verified.key_id == sig.key_id


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    key = generate_key()
    folder = make_bundle(tmp_path / "b")
    sign_bundle(folder, key)
    (folder / "model.onnx").write_bytes(MODEL + b"!")
    with pytest.raises(SignatureError, match="tampered"):
        verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(key)]))
    with pytest.raises(SignatureError, match="tampered"):
        check_file_digest(open_bundle(folder))


def test_tampered_manifest_is_refused(tmp_path: Path) -> None:
    key = generate_key()
    folder = make_bundle(tmp_path / "b")
    sign_bundle(folder, key)
    text = (folder / "manifest.yaml").read_text().replace("score_above: 0.5", "score_above: 0.99")
    (folder / "manifest.yaml").write_text(text)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(key)]))


def test_comment_and_key_order_do_not_matter(tmp_path: Path) -> None:
    key = generate_key()
    folder = make_bundle(tmp_path / "b")
    sign_bundle(folder, key)
    doc = yaml.safe_load((folder / "manifest.yaml").read_text())
    reordered = dict(reversed(list(doc.items())))
    (folder / "manifest.yaml").write_text(yaml.safe_dump(reordered, sort_keys=False))
    verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(key)]))


def test_unknown_key_and_unsigned_are_refused(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b")
    with pytest.raises(SignatureError, match="unsigned"):
        verify_bundle(open_bundle(folder), {})
    sign_bundle(folder, generate_key())
    other = generate_key()
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(other)]))


def test_forged_signature_with_trusted_key_id_is_refused(tmp_path: Path) -> None:
    trusted, attacker = generate_key(), generate_key()
    folder = make_bundle(tmp_path / "b")
    sign_bundle(folder, attacker)
    body = json.loads((folder / "signature.json").read_text())
    body["key_id"] = key_id(trusted.public_key())
    (folder / "signature.json").write_text(json.dumps(body))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(trusted)]))


def test_garbage_signature_file(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b")
    (folder / "signature.json").write_text("{not json")
    with pytest.raises(SignatureError, match="not a valid signature"):
        verify_bundle(open_bundle(folder), {})


def test_sign_refuses_or_fixes_wrong_sha(tmp_path: Path) -> None:
    key = generate_key()
    folder = make_bundle(tmp_path / "b", sha="0" * 64)
    with pytest.raises(SignatureError, match="manifest says"):
        sign_bundle(folder, key)
    sig = sign_bundle(folder, key, fix_sha256=True)
    assert (
        open_bundle(folder).manifest.sha256 == sig.file_sha256 == hashlib.sha256(MODEL).hexdigest()
    )
    assert "# operator comment" in (folder / "manifest.yaml").read_text()
    verify_bundle(open_bundle(folder), trusted_keys([public_key_b64(key)]))


def test_keypair_files_and_trusted_key_forms(tmp_path: Path) -> None:
    priv, pub = write_keypair(tmp_path / "keys")
    assert priv.stat().st_mode & 0o777 == 0o600
    key = load_private_key(priv)
    b64 = pub.read_text().strip()
    assert b64 == public_key_b64(key)
    kid = key_id(key.public_key())
    assert set(trusted_keys(f"{pub}, {b64}")) == {kid}
    assert key_id(parse_public_key(str(pub))) == kid
    with pytest.raises(FileExistsError):
        write_keypair(tmp_path / "keys")
    with pytest.raises(SignatureError):
        parse_public_key("not-a-key")
    with pytest.raises(SignatureError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n")
