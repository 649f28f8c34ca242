"""The model registry through the real API on Postgres: upload, list, artifact with Range and
ETag, and every refusal (malicious archives, bad signatures, broken ONNX, size limits)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_api import Api, running_api, tar_with

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.core.signing import generate_key, sign_bundle


@pytest.fixture
def api(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(
        pg_url, tmp_path / "store", monkeypatch, EDGECLOUD_REGISTRY_MAX_BUNDLE_BYTES="400000"
    ) as api:
        yield api


def stored_artifacts(api: Api) -> list[str]:
    return sorted(p.name for p in api.store.glob("??/*"))


def test_push_list_get_and_download_with_range_and_etag(api: Api, tmp_path: Path) -> None:
    folder = linear_bundle(tmp_path / "b", "1.0.0", api.key)
    status, body = api.push(folder)
    assert status == 201, body
    assert body["name"] == "press-linear" and body["version"] == "1.0.0"
    assert body["file_sha256"] == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    assert body["io"] == {
        "inputs": ["features (float32 [batch,3])"],
        "outputs": ["score (float32 [batch,1])"],
    }
    sha = str(body["artifact_sha256"])
    assert stored_artifacts(api) == [sha]
    # the same bundle again: no-op, 200
    assert api.push(folder)[0] == 200
    assert stored_artifacts(api) == [sha]

    listed = api.client.get("/api/v1/models", headers=api.h("read")).json()
    assert [(m["name"], m["version"]) for m in listed] == [("press-linear", "1.0.0")]
    detail = api.client.get("/api/v1/models/press-linear/1.0.0", headers=api.h("read")).json()
    assert detail["manifest"]["sha256"] == body["file_sha256"]
    assert detail["signature"]["key_id"] == body["key_id"]

    url = "/api/v1/models/press-linear/1.0.0/artifact"
    full = api.client.get(url, headers=api.h("read"))
    assert full.status_code == 200
    assert full.headers["etag"] == f'"{sha}"'
    assert hashlib.sha256(full.content).hexdigest() == sha
    assert len(full.content) == body["artifact_size"]
    with tarfile.open(fileobj=io.BytesIO(full.content)) as tf:
        assert sorted(tf.getnames()) == ["manifest.yaml", "model.onnx", "signature.json"]
    part = api.client.get(url, headers={**api.h("read"), "Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.content == full.content[100:]
    again = api.client.get(url, headers={**api.h("read"), "If-None-Match": f'"{sha}"'})
    assert again.status_code == 304
    node = api.node_token("n1")
    assert api.client.get(url, headers={"Authorization": f"Bearer {node}"}).status_code == 200


def test_version_conflict_and_scopes(api: Api, tmp_path: Path) -> None:
    assert api.push(linear_bundle(tmp_path / "a", "1.0.0", api.key))[0] == 201
    other = linear_bundle(tmp_path / "b", "1.0.0", api.key, bias=-4.0)
    assert api.push(other) == (
        409,
        {"error": "version_exists", "detail": api.push(other)[1]["detail"]},
    )
    status, body = api.push(linear_bundle(tmp_path / "c", "2.0.0", api.key), scope="read")
    assert (status, body["error"]) == (403, "forbidden")
    assert (
        api.client.get("/api/v1/models/press-linear/9.9.9", headers=api.h("read")).status_code
        == 404
    )


def _evil(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("members", "status", "error"),
    [
        ([(_evil("../escape.txt"), b"x")], 400, "unsafe_path"),
        ([(_evil("bundle/../../escape.txt"), b"x")], 400, "unsafe_path"),
        ([(_evil("/etc/passwd-copy"), b"x")], 400, "unsafe_path"),
        ([(_evil("model.onnx", tarfile.SYMTYPE, "/etc/passwd"), None)], 400, "link"),
        ([(_evil("model.onnx", tarfile.LNKTYPE, "manifest.yaml"), None)], 400, "link"),
        ([(_evil("fifo", tarfile.FIFOTYPE), None)], 400, "special_file"),
        ([(_evil(f"f{i}"), b"x") for i in range(40)], 400, "too_many_files"),
        ([(_evil("big.bin"), b"\0" * 500_000)], 413, "too_large"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo", "files", "big"],
)
def test_malicious_archives_are_refused(
    api: Api, members: list[tuple[tarfile.TarInfo, bytes | None]], status: int, error: str
) -> None:
    assert api.upload(tar_with(members), "evil.tar.gz")[0:1] == (status,)
    assert api.upload(tar_with(members), "evil.tar.gz")[1]["error"] == error
    assert stored_artifacts(api) == []
    assert not list(api.store.parent.rglob("escape.txt"))


def test_zip_symlink_and_not_an_archive(api: Api) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("model.onnx")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    assert api.upload(buf.getvalue(), "b.zip")[1]["error"] == "link"
    assert api.upload(b"this is no archive", "b.tgz")[1]["error"] == "not_archive"


def test_signature_and_content_refusals(api: Api, tmp_path: Path) -> None:
    unknown = linear_bundle(tmp_path / "unknown", "1.0.0", generate_key())
    assert api.push(unknown)[1]["error"] == "unknown_key"

    unsigned = linear_bundle(tmp_path / "unsigned", "1.0.0", None)
    assert api.push(unsigned)[1]["error"] == "unsigned"

    tampered = linear_bundle(tmp_path / "tampered", "1.0.0", api.key)
    data = bytearray((tampered / "model.onnx").read_bytes())
    data[-5] ^= 0xFF
    (tampered / "model.onnx").write_bytes(bytes(data))
    assert api.push(tampered)[1]["error"] == "sha256_mismatch"

    edited = linear_bundle(tmp_path / "edited", "1.0.0", api.key)
    text = (edited / "manifest.yaml").read_text().replace("score_above: 0.5", "score_above: 0.9")
    (edited / "manifest.yaml").write_text(text)
    assert api.push(edited)[1]["error"] == "bad_signature"

    garbage = linear_bundle(tmp_path / "garbage", "1.0.0", None)
    (garbage / "model.onnx").write_bytes(b"not an onnx model at all")
    sign_bundle(garbage, api.key, fix_sha256=True)
    status, body = api.push(garbage)
    assert (status, body["error"]) == (400, "onnx_invalid")

    bad_manifest = linear_bundle(tmp_path / "badm", "1.0.0", api.key)
    (bad_manifest / "manifest.yaml").write_text("name: [unclosed\n")
    assert api.push(bad_manifest)[1]["error"] == "bad_yaml"
    assert stored_artifacts(api) == []
