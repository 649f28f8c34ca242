"""Issue 20, REST side: the probe's inputs rebuilt and sent to a live ``edgecloud cloud api``
over real HTTP (its own uvicorn process): crafted uploads, a YAML alias bomb, duplicate JSON
keys, tokens in the log, slow clients, headers and paths."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_api import LiveApi, live_api
from registry_api import tar_with

from edgecloud.bench.rollout_models import linear_bundle
from edgecloud.core.archive import pack_folder

HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 12


@pytest.fixture
def api(pg_url: str, tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(
        pg_url,
        tmp_path,
        EDGECLOUD_API_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        EDGECLOUD_API_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        EDGECLOUD_API_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    ) as api:
        yield api


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _bundle_tar(folder: Path) -> bytes:
    return pack_folder(folder)


def _crafted(kind: str, tmp_path: Path, api: LiveApi) -> bytes:
    if kind == "file_then_folder":
        return tar_with([_file("b/model.onnx"), _dir("b/model.onnx")])
    if kind == "file_inside_a_file":
        return tar_with([_file("b/manifest.yaml"), _file("b/manifest.yaml/x")])
    if kind == "name_300_chars":
        return tar_with([_file("b/" + "n" * 300)])
    if kind == "truncated_tar_gz":
        whole = _bundle_tar(linear_bundle(tmp_path / "t", "1.0.0", api.key))
        return whole[: len(whole) // 2]
    if kind == "truncated_zip_member":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            noise = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(400))
            zf.writestr("manifest.yaml", noise)  # barely compressible: a long deflate stream
        data = bytearray(buf.getvalue())
        data[200:260] = b"\xff" * 60  # corrupt the deflate stream, keep the central directory
        return bytes(data)
    if kind == "signature_wrong_types":
        folder = linear_bundle(tmp_path / "s", "1.0.0", api.key)
        sig = json.loads((folder / "signature.json").read_text())
        sig["key_id"] = [sig["key_id"]]
        sig["signature"] = {"a": 1}
        (folder / "signature.json").write_text(json.dumps(sig))
        return _bundle_tar(folder)
    raise AssertionError(kind)


CRAFTED = {
    "file_then_folder": "unsafe_path",
    "file_inside_a_file": "unsafe_path",
    "name_300_chars": "unsafe_path",
    "truncated_tar_gz": "not_archive",
    "truncated_zip_member": "not_archive",
    "signature_wrong_types": "bad_signature",
}


def test_crafted_uploads_are_4xx_with_a_reason(api: LiveApi, tmp_path: Path) -> None:
    for kind, reason in CRAFTED.items():
        res = api.upload(_crafted(kind, tmp_path, api), "bundle.zip" if "zip" in kind else "b.tgz")
        assert res.status_code == 400, (kind, res.status_code, res.text)
        body = res.json()
        assert body["error"] == reason, (kind, body)
        assert str(api.store) not in body["detail"] and "/tmp" not in body["detail"], body
    # nothing was registered and no partial file was left in the store
    listed = httpx.get(f"{api.base}/api/v1/models", headers=api.h("read")).json()
    assert listed == []
    assert [p.name for p in api.store.rglob("*") if p.is_file()] == []
    assert "unhandled error" not in api.log.read_text()


def test_zip_without_file_type_bits_is_a_plain_file(api: LiveApi, tmp_path: Path) -> None:
    folder = linear_bundle(tmp_path / "z", "1.0.0", api.key)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            info = zipfile.ZipInfo(path.name)
            info.external_attr = 0o644 << 16  # permission bits, no S_IFREG (Windows tools)
            zf.writestr(info, path.read_bytes())
    res = api.upload(buf.getvalue(), "bundle.zip")
    assert res.status_code == 201, res.text
    assert res.json()["version"] == "1.0.0"


def _alias_bomb(levels: int) -> str:
    lines = [
        "name: bomb",
        "version: 1.0.0",
        "runtime: onnx",
        'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_and_healthz_stays_responsive(api: LiveApi) -> None:
    text = _alias_bomb(9)  # 10^9 values once expanded, under 1 KiB
    assert len(text) < 1024
    data = tar_with([_file("manifest.yaml", text.encode())])
    answer: list[httpx.Response] = []
    upload = threading.Thread(target=lambda: answer.append(api.upload(data)))
    worst = 0.0
    with httpx.Client(base_url=api.base, timeout=30) as client:
        client.get("/healthz")
        upload.start()
        while upload.is_alive():
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            worst = max(worst, time.perf_counter() - start)
    upload.join()
    res = answer[0]
    assert res.status_code == 413, res.text
    assert res.json()["error"] == "too_large" and "aliases" in res.json()["detail"]
    assert worst < 1.0, f"/healthz took {worst:.2f} s during the upload"


def test_duplicate_json_keys_are_refused(api: LiveApi) -> None:
    with httpx.Client(base_url=api.base, headers=api.h("admin"), timeout=30) as client:
        before = len(client.get("/api/v1/tokens").json())
        res = client.post(
            "/api/v1/tokens",
            content=b'{"scope": "read", "scope": "admin", "name": "probe"}',
            headers={"content-type": "application/json"},
        )
        assert res.status_code == 400, res.text
        assert res.json() == {
            "error": "duplicate_key",
            "detail": "the JSON body has the key 'scope' twice",
        }
        nested = client.post(
            "/api/v1/rollouts",
            content=b'{"model": "m:1.0.0", "selector": {"site": "a", "site": "b"}}',
            headers={"content-type": "application/json; charset=utf-8"},
        )
        assert nested.status_code == 400 and nested.json()["error"] == "duplicate_key"
        untyped = client.post("/api/v1/tokens", content=b'{"scope": "read", "scope": "admin"}')
        assert untyped.status_code == 400 and untyped.json()["error"] == "duplicate_key"
        assert len(client.get("/api/v1/tokens").json()) == before  # nothing was created
        ok = client.post("/api/v1/tokens", json={"scope": "read", "name": "fine"})
        assert ok.status_code == 201, ok.text


def test_no_token_in_the_log(api: LiveApi) -> None:
    read = api.tokens["read"]
    httpx.get(f"{api.base}/?token={read}")  # an old bookmark: the server must not log it
    httpx.get(f"{api.base}/api/v1/nodes?token={read}", headers=api.h("read"))
    httpx.get(f"{api.base}/api/v1/nodes", headers={"Authorization": f"Bearer {read}x"})
    deadline = time.monotonic() + 30
    while "GET /api/v1/nodes" not in api.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = api.log.read_text()
    assert "GET /?token=***" in log, log[-2000:]
    for token in api.tokens.values():
        assert token not in log
        assert token[len("ecl_read_") :] not in log


def _connect(api: LiveApi) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=30)
    sock.settimeout(30)
    return sock


def _closed_after(sock: socket.socket, drip: bytes, every_s: float = 0.3) -> float:
    """Send ``drip`` every ``every_s`` until the server closes; seconds it took."""
    start = time.monotonic()
    sock.setblocking(False)
    while time.monotonic() - start < 30:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        try:
            sock.send(drip)
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        time.sleep(every_s)
    return time.monotonic() - start


def test_slow_headers_and_bodies_are_cut_off(api: LiveApi) -> None:
    bound = HEADER_TIMEOUT_S + 5.0  # the deadline, plus slack for a loaded 2-core box
    heads = [_connect(api) for _ in range(5)]
    for sock in heads:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    bodies = [_connect(api) for _ in range(5)]
    for sock in bodies:
        sock.sendall(
            b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
    results: dict[str, list[float]] = {"headers": [], "body": []}

    def drip(sock: socket.socket, what: str, data: bytes) -> None:
        results[what].append(_closed_after(sock, data))

    threads = [threading.Thread(target=drip, args=(s, "headers", b"X-a: b\r\n")) for s in heads]
    threads += [threading.Thread(target=drip, args=(s, "body", b" ")) for s in bodies]
    for t in threads:
        t.start()
    assert httpx.get(f"{api.base}/healthz", timeout=30).status_code == 200  # others are served
    for t in threads:
        t.join()
    for sock in heads + bodies:
        sock.close()
    assert len(results["headers"]) == 5 and len(results["body"]) == 5
    for seconds in results["headers"] + results["body"]:
        assert HEADER_TIMEOUT_S * 0.5 <= seconds <= bound, results
    assert api.log.read_text().count("slow client cut off") >= 10


def test_connection_limit(api: LiveApi) -> None:
    idle = [_connect(api) for _ in range(MAX_CONNECTIONS)]
    for sock in idle:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # headers never finished
    # the server accepts in order: by the time it reads the probe, the idle ones are counted
    try:
        res = httpx.get(f"{api.base}/healthz", timeout=30)
        assert res.status_code == 503, res.text
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{api.base}/healthz", timeout=30).status_code == 200:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the API did not recover once the idle connections closed")


def test_security_headers_assets_and_no_redirects(api: LiveApi) -> None:
    with httpx.Client(base_url=api.base, timeout=30) as client:
        page = client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("style-src")[0]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        api_answer = client.get("/api/v1/nodes", headers=api.h("read"))
        assert api_answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert client.get("/dashboard/app.js").status_code == 200
        for path in ("/dashboard/__init__.py", "/dashboard/__pycache__/__init__.cpython-311.pyc"):
            res = client.get(path)
            assert res.status_code == 404, (path, res.status_code)
            assert "ASSETS_DIR" not in res.text
        for path in ("/api/v1/models/", "/dashboard", "/healthz/"):
            res = client.get(path, headers={**api.h("read"), "Host": "evil.example"})
            assert res.status_code == 404, (path, res.status_code)
            assert "location" not in res.headers and "evil.example" not in res.text
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "cdn" not in docs.text.lower() and "/docs/assets/swagger-ui-bundle.js" in docs.text
        script_hashes = docs.headers["content-security-policy"].split("script-src")[1]
        assert "'sha256-" in script_hashes.split(";")[0]
        bundle_js = client.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle_js.status_code == 200 and len(bundle_js.content) > 500_000
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
        assert client.get("/redoc").status_code == 404
