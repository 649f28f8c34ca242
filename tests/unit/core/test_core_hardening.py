"""Issue 20 in core: YAML alias expansion bounded, signature.json field types checked, and
credentials redacted from every log line (both formatters, uvicorn's access-log shape)."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from edgecloud.core.errors import InvalidManifest, SignatureError
from edgecloud.core.logging import configure_logging, redact
from edgecloud.core.manifest import MAX_YAML_NODES, parse_manifest
from edgecloud.core.signing import Signature


def _bomb(levels: int) -> str:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return "name: m\nversion: 1.0.0\nruntime: onnx\n" + text


@pytest.mark.parametrize("levels", [6, 9, 12])
def test_alias_bomb_is_too_large_before_it_is_built(levels: int) -> None:
    start = time.process_time()
    with pytest.raises(InvalidManifest) as err:
        parse_manifest(_bomb(levels))
    assert err.value.reason == "too_large" and str(MAX_YAML_NODES) in err.value.detail
    assert time.process_time() - start < 2.0  # bounded by the budget, not by 10**levels


def test_recursive_alias_and_deep_nesting_are_refused() -> None:
    with pytest.raises(InvalidManifest) as err:
        parse_manifest("a: &a [*a]\n")
    assert err.value.reason == "too_large"
    with pytest.raises(InvalidManifest) as deep:
        parse_manifest("[" * 5000)
    assert deep.value.reason == "bad_yaml"


def test_a_few_aliases_are_still_fine() -> None:
    text = (
        'name: m\nversion: 1.0.0\nruntime: onnx\nfile: m.onnx\nsha256: "' + "0" * 64 + '"\n'
        "inputs: {x: {from: values, names: &n [a, b]}}\noutputs: {score: s}\n"
        "decision: {anomaly: {score_above: 0.5}}\nmetadata: {names: *n}\n"
    )
    manifest, raw = parse_manifest(text)
    assert raw["metadata"] == {"names": ["a", "b"]} and manifest.name == "m"


@pytest.mark.parametrize(
    "field,value",
    [("key_id", ["k"]), ("signature", {"a": 1}), ("digest", 1), ("file_sha256", [])],
)
def test_signature_fields_of_the_wrong_json_type(field: str, value: object) -> None:
    body = {
        "algorithm": "ed25519", "key_id": "ed25519:00", "public_key": "p", "file_sha256": None,
        "digest": "d", "signature": "s", "signed_at": "t",
    }  # fmt: skip
    Signature.from_json(json.dumps(body))  # the well-typed one parses
    with pytest.raises(SignatureError, match=field):
        Signature.from_json(json.dumps({**body, field: value}))


TOKEN = "ecl_admin_" + "A1b2C3d4" * 5


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:5000 - "GET /?token={TOKEN} HTTP/1.1" 200',
        f'127.0.0.1:5000 - "GET /api/v1/nodes?limit=5&token={TOKEN} HTTP/1.1" 200',
        f"Authorization: Bearer {TOKEN}",
        "authorization: Bearer sk-proj-abcdefghijklmnop",
        '{"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}',
        f"token refused: {TOKEN}",
    ],
)
def test_redact_removes_every_credential(line: str) -> None:
    out = redact(line)
    assert TOKEN not in out and TOKEN[10:] not in out
    assert "abcdefghijklmnop" not in out and "dXNlcjpwYXNzd29yZA" not in out
    assert "***" in out


def test_redact_leaves_ordinary_lines_alone() -> None:
    for line in ("device_id=press-07 seq=3 basic check", "GET /api/v1/nodes?limit=5 HTTP/1.1"):
        assert redact(line) == line


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_both_formatters_redact(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/?token={TOKEN}", "1.1", 200
        )
        try:
            raise ValueError(f"bad header Authorization: Bearer {TOKEN}")
        except ValueError:
            logging.getLogger("edgecloud.test").exception("failed")
    finally:
        configure_logging("INFO", "json")
    out = stream.getvalue()
    assert "GET /?token=***" in out and "Bearer ***" in out
    assert TOKEN not in out and TOKEN[10:] not in out
