"""The learning loop on a real cloud API over SQLite (and Postgres, marked integration):
labels from three sources kept apart, the training set's counts for a seeded window, a retrain
that beats the active version and registers a signed bundle an agent loads, the same data
giving the same model bytes, a worse candidate refused, and bad input refused with nothing
written."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from edgecloud.cloud import auth, db
from edgecloud.cloud.api import create_app
from edgecloud.cloud.labels import service as labels
from edgecloud.cloud.labels.tables import Evaluation, Label
from edgecloud.cloud.registry.tables import ModelVersion
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core.archive import pack_folder
from edgecloud.core.events import reading_event_id
from edgecloud.core.readings import Reading
from edgecloud.core.signing import load_private_key, public_key_b64, trusted_keys
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.learning import dataset, evaluate
from edgecloud.sim.data import FAULTS, generate

ROOT = Path(__file__).resolve().parents[3]
KEY = ROOT / "models" / "dev-keys" / "dev.key"
PARENT = ROOT / "models" / "bundles" / "sensor-anomaly" / "1.1.0"
DEVICES, STEPS = 12, 400


class Cloud:
    def __init__(self, client: TestClient, headers: dict[str, str], url: str) -> None:
        self.c, self.h = client, headers
        self.engine = db.make_engine(url)
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=STEPS + 10)

    def post(self, path: str, **kw: Any) -> Any:
        return self.c.post(path, headers=self.h, **kw)

    def counts(self) -> tuple[int, int, int]:
        with self.engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                int(conn.execute(sa.select(sa.func.count()).select_from(db.table_of(t))).scalar())
                for t in (ModelVersion, Evaluation, Label)
            )


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)  # the Postgres run needs the test stack (tests/conftest.py)
def cloud(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cloud]:
    monkeypatch.setenv("EDGECLOUD_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("EDGECLOUD_ROLLOUT_ENGINE", "false")
    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    app = create_app(CloudSettings(database_url=url, retrain_signing_key=KEY))
    with TestClient(app) as c:
        engine = db.make_engine(url)
        with Session(engine) as session:
            token, _ = auth.create_token(session, "admin")
        engine.dispose()
        cl = Cloud(c, {"Authorization": f"Bearer {token}"}, url)
        pub = public_key_b64(load_private_key(KEY))
        assert cl.post("/api/v1/operator-keys", json={"public_key": pub}).status_code == 201
        up = cl.post("/api/v1/models", files={"bundle": ("b.tar", pack_folder(PARENT))})
        assert up.status_code == 201, up.text
        yield cl
        cl.engine.dispose()


def seed(cl: Cloud, *, seed: int = 5) -> tuple[Any, np.ndarray[Any, Any]]:
    """Readings of a simulated fleet (5-minute steps: the window spans the daily cycle), one
    second apart in time, flagged by the active 1.1.0 as an agent would; and their truth."""
    data = generate(DEVICES, STEPS, seed=seed, anomaly_rate=0.3, dt_s=300.0)
    values = np.round(data.values, 4)
    ids = [f"dev-{d:02d}" for d in range(DEVICES)]
    w = dataset.Window(
        [ids[d] for d in range(DEVICES) for _ in range(STEPS)],
        np.tile(np.arange(STEPS), DEVICES),
        np.array([(cl.t0 + timedelta(seconds=t)).timestamp()
                  for _ in range(DEVICES) for t in range(STEPS)]),
        values.reshape(-1, 4), np.zeros(DEVICES * STEPS, bool),
        *(np.full(DEVICES * STEPS, -1, np.int8) for _ in range(3)), [None] * (DEVICES * STEPS),
    )  # fmt: skip
    keys = trusted_keys([public_key_b64(load_private_key(KEY))])
    scores, flags = evaluate.score(PARENT, keys, w)
    rows = [
        {"event_id": reading_event_id(w.device_id[i], int(w.seq[i])),
         "device_id": w.device_id[i], "seq": int(w.seq[i]), "node_id": "edge-1",
         "ts": datetime.fromtimestamp(float(w.ts[i]), UTC), "received_at": db.utcnow(),
         "values": dict(zip(("temperature", "vibration_rms", "pressure", "current"),
                            map(float, w.values[i]), strict=True)),
         "model": "sensor-anomaly", "model_version": "1.1.0", "score": float(scores[i]),
         "anomaly": bool(flags[i]), "escalate": False, "inference": None}
        for i in range(len(w))
    ]  # fmt: skip
    with cl.engine.begin() as conn:
        conn.execute(sa.insert(db.table_of(db.Reading)), rows)
    truth = [
        {"device_id": ids[d], "seq": t, "fault": FAULTS[int(data.fault[d, t])]}
        for d in range(DEVICES) for t in range(STEPS)
    ]  # fmt: skip
    assert cl.post("/api/v1/labels/ground-truth", json={"items": truth}).status_code == 201
    return data, flags.reshape(DEVICES, STEPS)


def window(cl: Cloud) -> dict[str, str]:
    return {"since": cl.t0.isoformat(), "until": (cl.t0 + timedelta(seconds=STEPS)).isoformat()}


def test_label_sources_are_kept_apart(cloud: Cloud) -> None:
    seed(cloud)
    eid = reading_event_id("dev-00", 7)
    res = cloud.post(f"/api/v1/anomalies/{eid}/feedback", json={"verdict": "false_positive"})
    assert res.status_code == 201 and res.json()["anomalous"] is False
    res = cloud.post(
        f"/api/v1/anomalies/{eid}/feedback", json={"verdict": "missed", "note": "stuck valve"}
    )
    assert res.json()["anomalous"] is True and res.json()["note"] == "stuck valve"
    with cloud.engine.begin() as conn:
        labels.record_escalation(conn, eid, "high")
    with Session(cloud.engine) as session:
        rows = labels.labels_of(session, [eid])[eid]
    by_source = {r.source: (r.verdict, r.anomalous) for r in rows}
    assert by_source["operator"] == ("missed", True)  # the second answer replaced the first
    assert by_source["escalation"] == ("high", True)
    assert by_source["simulator"][0] in FAULTS
    assert len(rows) == 3
    counts = cloud.c.get("/api/v1/labels", headers=cloud.h).json()["by_source"]
    assert counts["operator"] == {"missed": 1}
    assert counts["escalation"] == {"high": 1}
    live = cloud.c.get(
        "/api/v1/evaluations/live", params={"model": "sensor-anomaly", "since": "-1d"},
        headers=cloud.h,
    ).json()["versions"]  # fmt: skip
    assert live[0]["feedback"] == {"missed": 1}  # the operator's, per version
    assert sum(counts["simulator"].values()) == DEVICES * STEPS
    # the same reading twice in one request: one row, the last answer
    twice = [{"device_id": "dev-00", "seq": 7, "fault": f} for f in ("none", "stuck")]
    res = cloud.post("/api/v1/labels/ground-truth", json={"items": twice})
    assert res.status_code == 201 and res.json() == {"written": 1}
    with Session(cloud.engine) as session:
        sim = [r for r in labels.labels_of(session, [eid])[eid] if r.source == "simulator"]
    assert [(r.verdict, r.fault_kind) for r in sim] == [("stuck", "stuck")]


def test_training_set_counts_match_the_seeded_window(cloud: Cloud) -> None:
    data, flags = seed(cloud)
    ws = window(cloud)
    w = dataset.load(
        cloud.engine, datetime.fromisoformat(ws["since"]), datetime.fromisoformat(ws["until"])
    )
    assert len(w) == DEVICES * STEPS
    sp = dataset.split(w, 0.3, ground_truth=True, evaluate_truth=True)
    cut = STEPS - 1 - int(0.3 * (STEPS - 1))  # steps 1 s apart: the first held-out step
    train_y, held_y = data.labels[:, :cut], data.labels[:, cut:]
    assert sp.counts["train"]["rows"] == DEVICES * cut
    assert sp.counts["train"]["anomalous"] == int(train_y.sum())
    assert sp.counts["train"]["normal_labelled"] == int((~train_y).sum())
    assert sp.counts["train"]["fit"] == int((~train_y).sum())
    assert sp.counts["held_out"]["anomalous"] == int(held_y.sum())
    assert sp.counts["held_out"]["normal"] == int((~held_y).sum())
    without = dataset.split(w, 0.3, ground_truth=False, evaluate_truth=True)
    # without ground truth the unlabelled readings the edge did not flag are the normal ones
    assert without.counts["train"]["fit"] == int((~flags[:, :cut]).sum())
    assert without.counts["labels_by_source"]["simulator"]["anomalous"] == int(data.labels.sum())


def test_retrain_accepts_a_better_temporal_model_and_refuses_a_worse_one(
    cloud: Cloud, tmp_path: Path
) -> None:
    seed(cloud)
    body = {**window(cloud), "trainer": "temporal", "evaluate_with_ground_truth": True}
    res = cloud.post("/api/v1/models/sensor-anomaly/retrain", json=body)
    assert res.status_code == 201, res.text
    out = res.json()
    assert out["accepted"] and out["version"] == "1.2.0" and out["parent_version"] == "1.1.0"
    report = out["report"]
    cand, act = report["candidate"]["metrics"], report["active"]["metrics"]
    assert cand["f1"] >= act["f1"] + 0.02
    assert cand["by_fault_kind"]["stuck"]["recall"] > act["by_fault_kind"]["stuck"]["recall"]
    assert report["training"]["ground_truth_in_training"] is False
    detail = cloud.c.get("/api/v1/models/sensor-anomaly/1.2.0", headers=cloud.h).json()
    meta = detail["manifest"]["metadata"]
    assert meta["parent_version"] == "1.1.0" and meta["trainer"] == "temporal"
    assert meta["training"]["rows"] == DEVICES * STEPS
    svg = cloud.c.get(f"/api/v1/evaluations/{out['evaluation_id']}/svg", headers=cloud.h)
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<polyline" in svg.text

    live = cloud.c.get(
        "/api/v1/evaluations/live", params={"model": "sensor-anomaly", "since": "-1d"},
        headers=cloud.h,
    ).json()["versions"]  # fmt: skip
    assert [(v["version"], v["readings"]) for v in live] == [("1.1.0", DEVICES * STEPS)]
    listed = cloud.c.get("/api/v1/evaluations?model=sensor-anomaly", headers=cloud.h).json()
    assert [e["id"] for e in listed] == [out["evaluation_id"]] and listed[0]["accepted"]

    # the registered bundle verifies and runs on the agent's loader
    art = cloud.c.get("/api/v1/models/sensor-anomaly/1.2.0/artifact", headers=cloud.h)
    folder = tmp_path / "fetched"
    with tarfile.open(fileobj=io.BytesIO(art.content)) as tf:
        tf.extractall(folder, filter="data")
    backend = load_bundle(
        folder, trusted_keys=[public_key_b64(load_private_key(KEY))], settings=InferenceSettings()
    )
    vals = {"temperature": 60.0, "vibration_rms": 0.4, "pressure": 3.2, "current": 9.0}
    (result,) = backend.infer_batch([Reading(device_id="x", seq=1, ts=1.0, values=vals)])
    backend.close()
    assert getattr(result, "version", None) == "1.2.0"

    # the same data again: the same model bytes, and (not better than itself) refused
    again = cloud.post("/api/v1/models/sensor-anomaly/retrain", json=body)
    assert again.status_code == 409 and again.json()["error"] == "not_better"
    assert again.json()["file_sha256"] == out["file_sha256"]
    # a pointwise model is worse than the temporal 1.2.0 on stuck sensors: refused
    before = cloud.counts()
    worse = cloud.post(
        "/api/v1/models/sensor-anomaly/retrain", json={**body, "trainer": "mahalanobis"}
    )
    assert worse.status_code == 409, worse.text
    assert "not better" in worse.json()["detail"]
    models, evaluations, _ = cloud.counts()
    assert models == before[0] and evaluations == before[1] + 1  # the figures are kept


def test_bad_input_is_refused_with_nothing_written(cloud: Cloud) -> None:
    seed(cloud)
    before = cloud.counts()
    past = {"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
    cases = [
        ("/api/v1/models/sensor-anomaly/retrain", past, 400, "empty_window"),
        ("/api/v1/models/sensor-anomaly/retrain", window(cloud), 400, "one_class"),
        ("/api/v1/models/no-such-model/retrain", window(cloud), 404, "unknown_model"),
        (f"/api/v1/anomalies/{uuid.uuid4()}/feedback", {"verdict": "missed"}, 404,
         "unknown_event"),
        (f"/api/v1/anomalies/{reading_event_id('dev-00', 1)}/feedback", {"verdict": "maybe"},
         422, "invalid_request"),
    ]  # fmt: skip
    for path, body, status, error in cases:
        res = cloud.post(path, json=body)
        assert (res.status_code, res.json()["error"]) == (status, error), (path, res.text)
    assert cloud.counts() == before
