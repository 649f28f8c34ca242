"""Schemathesis over the API's own OpenAPI document, against a real Postgres with data: no
generated request (valid or not, with a token of each scope or none) may get a 5xx, and every
answer must match the status codes and schemas the document declares."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.api import create_app
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.cloud.settings import CloudSettings

EXAMPLES = 40  # per operation and token: bounded, the whole run takes about a minute


@pytest.fixture
def live_api(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``edgecloud cloud api`` as a process (real uvicorn, real HTTP), seeded; (url, token)."""
    migrate(pg_url)
    rest.seed(
        pg_url,
        rest.Dataset(
            devices=2, readings=400, interval_s=10, end=datetime(2026, 11, 20, tzinfo=UTC)
        ),
    )
    engine = make_engine(pg_url)
    with Session(engine) as session:
        token, _ = auth.create_token(session, "admin", "schemathesis")
    engine.dispose()
    port = rest._free_port()
    proc = rest.start_api(pg_url, port, tmp_path / "api.log")
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "api.log").read_text()


def test_no_generated_request_gets_a_5xx(live_api: tuple[str, str]) -> None:
    base, admin = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {admin}"}
    failures: list[str] = []
    operations = 0
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() not in ("GET", "POST"):
            continue  # DELETE would revoke the token the run uses
        operations += 1
        label = operation.label

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base, headers=headers)
            try:
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        status_code_conformance,
                        content_type_conformance,
                        response_schema_conformance,
                    ],
                    headers=headers,
                )
            except Exception as exc:  # collect every operation's failure, then report
                failures.append(f"{label}: {exc}"[:2000])  # noqa: B023 - called in this iteration
                raise

        try:
            check()
        except Exception as exc:
            if not any(f.startswith(label) for f in failures):
                failures.append(f"{label}: {exc!r}"[:2000])  # not a check: report it
    assert not failures, "\n\n".join(failures)
    assert operations >= 8 and calls >= operations * EXAMPLES // 2, (operations, calls)


@pytest.mark.parametrize("path", ["/api/v1/nodes", "/api/v1/anomalies", "/api/v1/devices"])
def test_nul_and_junk_parameters_are_4xx(pg_url: str, path: str) -> None:
    app = create_app(CloudSettings(database_url=pg_url))
    with TestClient(app) as client:
        engine = make_engine(pg_url)
        with Session(engine) as session:
            token, _ = auth.create_token(session, "read")
        engine.dispose()
        headers = {"Authorization": f"Bearer {token}"}
        for params in (
            {"cursor": "\x00"},
            {"limit": "1e309"},
            {"since": "\x00"},
            {"node_id": "a\x00b"},
            {"device_id": "%ED%A0%80"},
            {"selector": "=\x00"},
        ):
            res = client.get(path, params=params, headers=headers)
            assert res.status_code < 500, (params, res.text)


MEMBER_NAMES = (
    "manifest.yaml", "model.onnx", "signature.json", "b/manifest.yaml", "b/model.onnx",
    "b", "b/c", "b/model.onnx/x", "../escape", "/abs", "a\\b", "C:x", ".", "n" * 300,
)  # fmt: skip
KINDS = ("file", "dir", "symlink", "hardlink", "fifo")


def _payloads(tmp_path: Path) -> list[bytes]:
    from edgecloud.bench.rollout_models import linear_bundle
    from edgecloud.core.signing import generate_key

    folder = linear_bundle(tmp_path / "seed", "1.0.0", generate_key())
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    return [
        b"",
        b"x",
        (folder / "manifest.yaml").read_bytes(),
        (folder / "model.onnx").read_bytes(),
        (folder / "signature.json").read_bytes(),
        b'{"algorithm": "ed25519", "key_id": [1], "public_key": {}, "digest": 1}',
        ("name: m\nversion: 1.0.0\nruntime: onnx\n" + bomb).encode(),
        b"name: m\nname: n\n",
    ]


def _archive(members: list[tuple[str, str, bytes]], fmt: str, cut: int | None) -> bytes:
    import io
    import tarfile
    import warnings
    import zipfile

    buf = io.BytesIO()
    if fmt == "zip":
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore", UserWarning)  # duplicate names are on purpose
            for name, kind, data in members:
                info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
                mode = {"file": 0o100644, "dir": 0o40755, "symlink": 0o120777,
                        "hardlink": 0o644, "fifo": 0o10644}[kind]  # fmt: skip
                info.external_attr = mode << 16
                zf.writestr(info, b"" if kind == "dir" else data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if fmt == "tgz" else "w") as tf:
            for name, kind, data in members:
                info = tarfile.TarInfo(name)
                info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                             "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE}[kind]  # fmt: skip
                if kind == "file":
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                else:
                    info.linkname = "manifest.yaml" if "link" in kind else ""
                    tf.addfile(info)
    data = buf.getvalue()
    return data[:cut] if cut is not None else data


CRAFTED_EXAMPLES = 80


def test_crafted_archives_on_the_upload_route(live_api: tuple[str, str], tmp_path: Path) -> None:
    """The upload route, schemathesis-driven, with archives built to break the unpacker (links,
    special files, escapes, long names, file-and-folder names, truncation, alias bombs, wrong
    signature types): every answer a declared 2xx / 4xx with a body that matches the schema."""
    from hypothesis import strategies as st

    base, admin = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operation = schema["/api/v1/models"]["POST"]
    headers = {"Authorization": f"Bearer {admin}"}
    payloads = _payloads(tmp_path)
    member = st.tuples(
        st.sampled_from(MEMBER_NAMES), st.sampled_from(KINDS), st.sampled_from(payloads)
    )
    archives = st.builds(
        _archive,
        st.lists(member, max_size=6),
        st.sampled_from(["tar", "tgz", "zip"]),
        st.none() | st.integers(min_value=0, max_value=4000),
    )
    statuses: list[int] = []

    @settings(
        max_examples=CRAFTED_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(data=archives)
    def check(data: bytes) -> None:
        case = operation.Case(body={"bundle": data}, media_type="multipart/form-data")
        response = case.call(base_url=base, headers=headers)
        statuses.append(response.status_code)
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
            headers=headers,
        )
        assert response.status_code in (400, 413), (response.status_code, response.text)
        assert "/tmp" not in response.text and "Traceback" not in response.text

    check()
    assert len(statuses) >= CRAFTED_EXAMPLES // 2, statuses
