"""The retraining job: window -> training set -> trainer -> signed candidate -> evaluation
against the active version -> registered (or refused with the figures).

``retrain`` is what ``POST /api/v1/models/{name}/retrain`` runs (through the ``retrain_job``
setting, ``edgecloud.learning.job:retrain``; another trainer plugs in there with the same
signature). The active version is the one most nodes run (their heartbeats' active models),
else the highest registered version of the name; the candidate
is the next minor version, signed with the key of ``retrain_signing_key`` (an operator key the
registry and the fleet trust), and registered only when it beats the active version on
``retrain_metric`` by at least ``retrain_min_gain`` on the held-out window.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, select

from edgecloud import __version__
from edgecloud.cloud import db
from edgecloud.cloud.labels.port import JobContext, JobRefused, RetrainRequest, UnknownModel
from edgecloud.cloud.labels.tables import Evaluation
from edgecloud.cloud.registry import service
from edgecloud.cloud.registry.tables import ModelVersion
from edgecloud.core import archive
from edgecloud.core.errors import ValidationFailed
from edgecloud.core.signing import load_private_key, public_key_b64
from edgecloud.learning import dataset, evaluate, trainer
from edgecloud.learning.dataset import Split

METRICS = ("f1", "recall", "precision", "auc")


def _semver(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("-")[0].split("."))
    except ValueError:
        return (0,)


def next_version(versions: list[str]) -> str:
    top = max(versions, key=_semver)
    parts = ([*list(_semver(top)), 0, 0, 0])[:3]
    return f"{parts[0]}.{parts[1] + 1}.0"


def trainer_of(manifest: dict[str, Any]) -> str:
    named = (manifest.get("metadata") or {}).get("trainer")
    if named in trainer.TRAINERS:
        return str(named)
    inputs = manifest.get("inputs") or {}
    if "run_in" in inputs:
        return "temporal"
    return "mahalanobis-ewma" if "ewma_in" in inputs else "mahalanobis"


def fit(kind: str, sp: Split, quantile: float) -> tuple[trainer.Params, bool, bool]:
    """(params, stateful, temporal) of ``kind`` fitted on the split's training rows."""
    x = sp.train.values[sp.fit_mask]
    series = dataset.device_series(sp.train, sp.fit_mask)
    if kind == "temporal":
        p = trainer.train(x, quantile, max_run=trainer.longest_repeat_run(series))
        return p, True, True
    p = trainer.train(x, quantile)
    if kind == "mahalanobis-ewma":
        c = trainer.ewma_quantile(p, series, quantile)
        return trainer.Params(p.mu, p.sigma, p.whiten, p.c, c, p.k_run), True, False
    return p, False, False


def _parent(session: Session, name: str) -> tuple[ModelVersion, list[str]]:
    rows = list(service.list_models(session, name))
    if not rows:
        raise UnknownModel("unknown_model", f"no registered model named {name}")
    by_version = {r.version: r for r in rows}
    running: dict[str, int] = {}
    for models in session.exec(select(db.Node.active_models)):
        for m in models or []:
            if isinstance(m, dict) and m.get("name") == name and m.get("version") in by_version:
                running[str(m["version"])] = running.get(str(m["version"]), 0) + 1
    if running:  # the version most nodes run
        parent = by_version[max(running, key=lambda v: (running[v], _semver(v)))]
    else:
        parent = max(rows, key=lambda r: _semver(r.version))
    return parent, [r.version for r in rows]


def retrain(ctx: JobContext, req: RetrainRequest) -> dict[str, Any]:
    """Run the job; returns the outcome (``accepted``, ``version``, ``report``, ...)."""
    if ctx.metric not in METRICS:
        raise JobRefused("bad_metric", f"retrain_metric must be one of {', '.join(METRICS)}")
    with Session(ctx.engine) as session:
        parent, versions = _parent(session, req.name)
        keys = service.trusted(session)
    kind = req.trainer or trainer_of(parent.manifest)
    if kind not in trainer.TRAINERS:
        raise ValidationFailed("bad_trainer", f"trainer must be one of {trainer.TRAINERS}")
    if ctx.signing_key is None or not ctx.signing_key.expanduser().is_file():
        raise JobRefused(
            "no_signing_key", "the cloud has no retrain signing key (EDGECLOUD_RETRAIN_SIGNING_KEY)"
        )
    key_path = ctx.signing_key.expanduser()
    pub = public_key_b64(load_private_key(key_path))
    if not any(public_key_b64(k) == pub for k in keys.values()):
        raise JobRefused("untrusted_signing_key", "the retrain signing key is not a trusted key")
    if not 0.05 <= req.holdout <= 0.8:
        raise ValidationFailed("bad_holdout", "holdout must be between 0.05 and 0.8")
    ctx.progress(f"reading the window {req.since.isoformat()} .. {req.until.isoformat()}")
    window = dataset.load(ctx.engine, req.since, req.until)
    sp = dataset.split(window, req.holdout, req.ground_truth, req.evaluate_with_ground_truth)
    ctx.progress(f"training {kind} on {sp.counts['train']['fit']} normal readings")
    params, stateful, temporal = fit(kind, sp, req.quantile)
    model = trainer.export(params, stateful, temporal=temporal)
    version = next_version(versions)
    decision = parent.manifest.get("decision") or {"anomaly": {"score_above": 0.5}}
    cut = datetime.fromtimestamp(sp.cut, UTC).isoformat()
    meta: dict[str, Any] = {
        "trainer": kind,
        "features": ["temperature", "vibration_rms", "pressure", "current"],
        "parent_version": parent.version,
        "data_window": {"since": req.since.isoformat(), "until": req.until.isoformat(),
                        "held_out_from": cut},
        "training": sp.counts,
        "quantile": req.quantile,
        "code_version": f"edgecloud {__version__}",
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="retrain-", dir=ctx.store.root) as tmp:
        folder = Path(tmp) / "candidate"
        trainer.write_bundle(
            folder, req.name, version, model, decision, stateful, meta, key_path,
            temporal=temporal,
        )  # fmt: skip
        parent_dir = archive.extract(
            ctx.store.path(parent.artifact_sha256), Path(tmp) / "parent",
            max_bytes=ctx.limits.max_bundle_bytes, max_files=ctx.limits.max_files,
        )  # fmt: skip
        ctx.progress(f"scoring {parent.version} and {version} on {len(sp.held_out)} held-out")
        labels = sp.held_out.label(req.ground_truth or req.evaluate_with_ground_truth)
        report = _report(req, ctx, parent.version, version, kind, sp, labels)
        for role, where in (("active", parent_dir), ("candidate", folder)):
            s, f = evaluate.score(where, keys, sp.held_out)
            m = evaluate.metrics(s, f, sp.held_out, labels, sp.held_out.fault_kind)
            report[role]["metrics"] = m
        gain = _gain(report, ctx.metric)
        report["gain"] = gain
        report["accepted"] = accepted = gain >= ctx.min_gain
        meta["held_out"] = {k: report["candidate"]["metrics"][k] for k in METRICS}
        trainer.write_bundle(
            folder, req.name, version, model, decision, stateful, meta, key_path,
            temporal=temporal,
        )  # fmt: skip
        picture = evaluate.svg(report)
        row = None
        if accepted:
            ctx.progress(f"accepted: {ctx.metric} +{gain:.4f}; registering {req.name}:{version}")
            packed = Path(tmp) / "candidate.tar"
            packed.write_bytes(archive.pack_folder(folder))
            with Session(ctx.engine) as session:
                row, _ = service.register(session, ctx.store, packed, ctx.limits, req.who)
        else:
            ctx.progress(f"refused: {ctx.metric} gain {gain:+.4f} < {ctx.min_gain}")
    with Session(ctx.engine) as session:
        ev = Evaluation(
            model=req.name, version=version, parent_version=parent.version, accepted=accepted,
            report=report, svg=picture, created_by=req.who,
        )  # fmt: skip
        session.add(ev)
        session.commit()
        session.refresh(ev)
    return {
        "accepted": accepted,
        "model": req.name,
        "version": version,
        "parent_version": parent.version,
        "evaluation_id": str(ev.id),
        "artifact_sha256": row.artifact_sha256 if row is not None else None,
        "file_sha256": model_sha(model),
        "report": report,
    }


def model_sha(model: Any) -> str:
    import hashlib

    return hashlib.sha256(model.SerializeToString()).hexdigest()


def _report(
    req: RetrainRequest, ctx: JobContext, parent: str, version: str, kind: str, sp: Split,
    labels: np.ndarray[Any, Any],
) -> dict[str, Any]:  # fmt: skip
    return {
        "model": req.name,
        "trainer": kind,
        "metric": ctx.metric,
        "min_gain": ctx.min_gain,
        "held_out_from": datetime.fromtimestamp(sp.cut, UTC).isoformat(),
        "held_out_labels": "operator, escalation"
        + (", simulator" if req.ground_truth or req.evaluate_with_ground_truth else ""),
        "held_out_rows": int((labels >= 0).sum()),
        "training": sp.counts,
        "active": {"version": parent},
        "candidate": {"version": version},
    }


def _gain(report: dict[str, Any], metric: str) -> float:
    a = report["active"]["metrics"].get(metric) or 0.0
    c = report["candidate"]["metrics"].get(metric) or 0.0
    return round(float(c) - float(a), 4)
