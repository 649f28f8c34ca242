"""Build the bundled sensor anomaly models: generate data, train with numpy, export ONNX, sign.

    .venv/bin/python models/build_model.py            # rebuilds models/bundles/*, prints AUCs

The trainer lives in the package (``edgecloud.learning.trainer``), shared with the cloud's
retraining job (``edgecloud model retrain``); this script only generates the data, calls it and
records the held-out AUCs. The model is a Mahalanobis distance over (temperature,
vibration_rms, pressure, current), fitted on fault-free data: it learns how the sensors move
together with the machine's load, so a reading that breaks that pattern (a spike, a drift, a
worn bearing) lands far away.
score = d2 / (d2 + c), with c the 99th percentile of d2 on normal data (score 0.5 there).

Bundles written (each manifest.yaml + model.onnx + signature.json, a few KB):
- sensor-anomaly/1.0.0       stateless, dynamic batch: features [N,4] -> score [N,1]
- sensor-anomaly/1.1.0       retrained (other seed, more data), threshold tuned higher
- sensor-anomaly-ewma/1.0.0  stateful: an EWMA of d2 per device fed back (ewma_in/ewma_out)

They are signed with the DEVELOPMENT key in models/dev-keys/ (created if missing). That key
is public in this repository: production edge nodes must never trust it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.core.signing import load_private_key, public_key_b64, write_keypair
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.learning import trainer
from edgecloud.learning.trainer import Params, export, write_bundle
from edgecloud.sim.data import FAULTS, SENSORS, Dataset, generate, roc_auc

HERE = Path(__file__).resolve().parent


def train(data: Dataset, quantile: float) -> Params:
    x, _, _ = data.flat()
    return trainer.train(x, quantile, shape=data.values.shape[:2])


def evaluate(folder: Path, pub: str, data: Dataset) -> dict[str, float]:
    """ROC AUC of the loaded bundle (through edgecloud's own inference path) on ``data``."""
    backend = load_bundle(folder, trusted_keys=[pub], settings=InferenceSettings())
    n_dev, n_steps, _ = data.values.shape
    scores = np.empty((n_dev, n_steps))
    for t in range(n_steps):  # one batch per step: a device's readings arrive in order
        batch = [
            Reading(device_id=f"dev-{d}", seq=t, ts="2026-01-01T00:00:00Z",
                    values=dict(zip(SENSORS, map(float, data.values[d, t]), strict=True)))
            for d in range(n_dev)
        ]  # fmt: skip
        for d, out in enumerate(backend.infer_batch(batch)):
            assert isinstance(out, InferenceResult) and out.score is not None, out
            scores[d, t] = out.score
    backend.close()
    s, y, k = scores.reshape(-1), data.labels.reshape(-1), data.fault.reshape(-1)
    stuck = FAULTS.index("stuck")
    result = {"auc": roc_auc(s, y), "auc_without_stuck": roc_auc(s[k != stuck], y[k != stuck])}
    for i, kind in enumerate(FAULTS[1:], start=1):
        mask = (k == i) | (k == 0)
        if (k == i).any():
            result[f"auc_{kind}"] = roc_auc(s[mask], y[mask])
    return {key: round(v, 4) for key, v in result.items()}


def dev_key(key_dir: Path) -> tuple[Path, str]:
    priv = key_dir / "dev.key"
    if not priv.exists():
        write_keypair(key_dir, "dev")
    return priv, public_key_b64(load_private_key(priv))


def build(
    out: Path, key_dir: Path, *, devices: int = 96, steps: int = 1500, eval_steps: int = 1500
) -> dict[str, dict[str, float]]:
    """Build the three bundles under ``out``; returns their held-out AUCs."""
    key, pub = dev_key(key_dir)
    held_out = generate(24, eval_steps, seed=1001, anomaly_rate=0.05)
    specs = [  # (name, version, train seed, data scale, quantile, stateful, anomaly threshold)
        ("sensor-anomaly", "1.0.0", 7, 1, 0.99, False, 0.5),
        ("sensor-anomaly", "1.1.0", 11, 2, 0.995, False, 0.55),
        ("sensor-anomaly-ewma", "1.0.0", 7, 1, 0.99, True, 0.5),
    ]
    report: dict[str, dict[str, float]] = {}
    for name, version, seed, scale, q, stateful, threshold in specs:
        decision = {"anomaly": {"score_above": threshold}, "escalate": {"score_above": 0.9}}
        train_data = generate(devices * scale, steps, seed=seed, anomaly_rate=0.0)
        params = train(train_data, q)
        meta: dict[str, Any] = {
            "features": list(SENSORS),
            "trained_on": f"{devices * scale} simulated devices x {steps} steps, fault-free, "
            f"seed {seed}",
            "score": f"d2/(d2+c), c = the {q} quantile of "
            f"{'the EWMA of ' if stateful else ''}d2 on normal data",
            "development_key": "signed with models/dev-keys/dev.key; never trust it in production",
        }
        model = export(params, stateful)
        folder = out / name / version
        write_bundle(folder, name, version, model, decision, stateful, meta, key)
        report[f"{name}:{version}"] = metrics = evaluate(folder, pub, held_out)
        meta["held_out_auc"] = metrics  # recorded in the manifest, then signed again
        write_bundle(folder, name, version, model, decision, stateful, meta, key)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "bundles")
    parser.add_argument("--keys", type=Path, default=HERE / "dev-keys")
    parser.add_argument("--devices", type=int, default=96)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)
    report = build(args.out, args.keys, devices=args.devices, steps=args.steps)
    for ref, metrics in report.items():
        print(ref, " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
