"""What the edge keeps of tensor values (edge/tensor_keep.py) per EDGECLOUD_TENSOR_STORE mode,
the COPY text of the digest column, and the SQLite store's tensor_blobs with retention."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecloud.core.events import EVENT_ADAPTER, ReadingEvent
from edgecloud.core.tensors import TensorValue
from edgecloud.core.wire.encode import reading_event_text
from edgecloud.edge.batch import Accepted, classify
from edgecloud.edge.migrations import migrate
from edgecloud.edge.settings import EdgeSettings
from edgecloud.edge.store import COLUMNS, Store, copy_text
from edgecloud.edge.tensor_keep import keep_tensors

IMAGE = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
NESTED = np.array([[1, 2], [3, 4]], dtype="<f8")
BIG_ENDIAN = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=">f4")  # stored little-endian


@dataclass
class Msg:
    topic: str
    payload: bytes
    received_at: float


def b64(a: np.ndarray[Any, Any]) -> dict[str, Any]:
    le = a.astype(a.dtype.newbyteorder("<"))
    text = base64.b64encode(le.tobytes()).decode()
    return {"dtype": str(le.dtype), "shape": list(a.shape), "b64": text}


def msg(device: str, seq: int, at: float, **values: Any) -> Msg:
    body = {"device_id": device, "seq": seq, "ts": 1.0, "values": values}
    return Msg(f"devices/{device}/telemetry", json.dumps(body).encode(), at)


def plan_of(*messages: Msg) -> list[Accepted]:
    plan = classify(list(messages), {}, lambda keys: {}, 1 << 20)
    assert not plan.dead_letters, plan.dead_letters
    return plan.accepted


def readings() -> list[Accepted]:
    return plan_of(
        msg("cam", 1, time.time(), image=b64(IMAGE), nested=[[1, 2], [3, 4]], lux=2.0),
        msg("cam", 2, time.time(), lux=1.0),  # no tensor: nothing to keep
    )


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_digest_is_sha256_of_the_raw_little_endian_bytes_and_no_bytes_are_kept() -> None:
    acc = readings()
    keep_tensors(acc, "digest", in_event=False)
    assert json.loads(acc[0].tensors_json or "") == {
        "image": {"dtype": "uint8", "shape": [2, 3, 3], "sha256": sha(IMAGE.tobytes())},
        "nested": {"dtype": "float64", "shape": [2, 2],  # nested JSON numbers are float64
                   "sha256": sha(NESTED.tobytes())},
    }  # fmt: skip
    assert acc[0].blobs is None and acc[0].event_tensors_json is None
    assert json.loads(acc[0].values_json) == {"lux": 2.0}
    assert (acc[1].tensors_json, acc[1].blobs) == (None, None)


def test_a_big_endian_array_is_digested_as_its_little_endian_bytes() -> None:
    t = TensorValue(BIG_ENDIAN, "unused")  # the binary form is little-endian; numpy may not be
    le = BIG_ENDIAN.astype("<f4").tobytes()
    assert t.raw() == le and t.digest()["sha256"] == sha(le) != sha(BIG_ENDIAN.tobytes())


def test_blob_rows_and_none_and_event_tensors() -> None:
    acc = readings()
    keep_tensors(acc, "blob", in_event=True)
    blobs = acc[0].blobs or []
    assert [(b["device_id"], b["seq"], b["name"]) for b in blobs] == [
        ("cam", 1, "image"), ("cam", 1, "nested")
    ]  # fmt: skip
    assert blobs[0]["data"] == IMAGE.tobytes() and blobs[0]["shape"] == [2, 3, 3]
    assert json.loads(acc[0].event_tensors_json or "") == {
        "image": b64(IMAGE),
        "nested": b64(NESTED),
    }
    assert acc[1].event_tensors_json is None
    # the event text: tensors in data.tensors, valid for the cloud's event schema
    text = reading_event_text("n1", "cam", 1, acc[0].reading.ts.isoformat(), acc[0].values_json,
                              None, acc[0].event_tensors_json)  # fmt: skip
    ev = EVENT_ADAPTER.validate_json(text)
    assert isinstance(ev, ReadingEvent) and ev.data.values == {"lux": 2.0}
    assert ev.data.tensors is not None and ev.data.tensors["image"].b64 == b64(IMAGE)["b64"]
    plain = reading_event_text("n1", "cam", 2, "2026-12-03T10:00:00+00:00", "{}", None)
    assert '"tensors"' not in plain

    none = readings()
    keep_tensors(none, "none", in_event=False)
    assert [(a.tensors_json, a.blobs, a.event_tensors_json) for a in none] == [(None,) * 3] * 2


def test_copy_text_writes_the_digest_column() -> None:
    acc = readings()
    keep_tensors(acc, "digest", in_event=False)
    for a in acc:
        a.ts_text = a.reading.ts.isoformat()
    rows = [dict(zip(COLUMNS, line.split("\t"), strict=True))
            for line in copy_text(acc, 5, {}).splitlines()]  # fmt: skip
    assert json.loads(rows[0]["tensors"])["image"]["sha256"] == sha(IMAGE.tobytes())
    assert rows[1]["tensors"] == "\\N"


def test_sqlite_store_keeps_blobs_and_retention_deletes_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    migrate(url)
    store = Store(url)
    try:
        old = time.time() - 7200
        acc = plan_of(msg("cam", 1, old, image=b64(IMAGE), lux=1.0), msg("cam", 2, old, lux=2.0))
        keep_tensors(acc, "blob", in_event=False)
        plan = classify([], {}, lambda keys: {}, 1 << 20)
        plan.accepted.extend(acc)
        w = store.write(plan)
        assert store.tensor_blobs("cam", 1) == {"image": ("uint8", [2, 3, 3], IMAGE.tobytes())}
        assert store.tensor_blobs("cam", 2) == {}
        assert w.batch_id is not None
        store.mark_published({w.batch_id: time.time()})
        assert store.delete_older_than(datetime.now(UTC) - timedelta(hours=1), 10) == 2
        assert store.tensor_blobs("cam", 1) == {}
    finally:
        store.close()


def test_settings_names_and_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_TENSOR_STORE", "blob")
    monkeypatch.setenv("EDGECLOUD_EVENT_TENSORS", "true")
    s = EdgeSettings()
    assert (s.tensor_store, s.event_tensors) == ("blob", True)
    fields = EdgeSettings.model_fields
    assert (fields["tensor_store"].default, fields["event_tensors"].default) == ("digest", False)
    monkeypatch.setenv("EDGECLOUD_TENSOR_STORE", "bytes")
    with pytest.raises(ValueError, match="tensor_store"):
        EdgeSettings()
