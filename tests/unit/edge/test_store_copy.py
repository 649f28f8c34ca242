"""COPY text of a batch (edge/store.py): scores written for the whole batch at once."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.edge.batch import Accepted
from edgecloud.edge.store import COLUMNS, _score_texts, copy_text


def accepted(seq: int, score: float | None, *, inferred: bool = True) -> Accepted:
    ts = datetime(2026, 12, 2, 6, 0, 0, seq, tzinfo=UTC)
    r = Reading(device_id=f"d{seq % 3}", seq=seq, ts=ts, values={"t": 1.0})
    a = Accepted(r, 1764655200.0 + seq / 7, f"devices/{r.device_id}/telemetry", b"{}")
    a.values_json, a.ts_text = '{"t":1.0}', ts.isoformat()
    if inferred:
        a.inference = InferenceResult(model="m", version="1", score=score, anomaly=bool(score))
        a.inference_json = a.inference.model_dump_json()
    return a


def test_score_texts_are_the_same_floats_as_repr() -> None:
    rng = random.Random(3)
    scores = [0.1, 1e-7, 1e22, -0.0, 3.0, 5e-324, 1.7976931348623157e308, 0.7971014976501465]
    scores += [rng.uniform(-1, 1) * 10 ** rng.randint(-40, 40) for _ in range(2000)]
    batch = [accepted(i, s) for i, s in enumerate(scores)]
    batch += [accepted(9000, None), accepted(9001, 0.5, inferred=False)]
    texts = _score_texts(batch)
    assert texts[-2:] == ["\\N", "\\N"]
    for s, t in zip(scores, texts, strict=False):
        assert float(t) == s and math.copysign(1, float(t)) == math.copysign(1, s), (s, t)
    assert _score_texts([]) == []
    assert _score_texts([accepted(1, math.inf)]) == ["inf"]  # never made; repr, as before


def test_copy_rows() -> None:
    batch = [accepted(1, 0.25), accepted(2, None), accepted(3, 0.5, inferred=False)]
    stamps: dict[float, str] = {}
    rows = [line.split("\t") for line in copy_text(batch, 77, stamps).splitlines()]
    assert [len(r) for r in rows] == [len(COLUMNS)] * 3
    by_col = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    assert [r["score"] for r in by_col] == ["0.25", "\\N", "\\N"]
    assert [r["anomaly"] for r in by_col] == ["t", "f", "\\N"]
    assert [r["inference"] == "\\N" for r in by_col] == [False, False, True]
    for a, r in zip(batch, by_col, strict=True):
        assert r["ts"] == a.reading.ts.isoformat()
        got = datetime.fromisoformat(r["received_at"])
        assert got == datetime.fromtimestamp(a.received_at, UTC)
        assert stamps[a.received_at] == r["received_at"]
        assert (r["device_id"], r["seq"], r["batch_id"]) == (
            a.reading.device_id,
            str(a.reading.seq),
            "77",
        )
