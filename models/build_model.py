"""Build the bundled sensor anomaly models: generate data, train with numpy, export ONNX, sign.

    .venv/bin/python models/build_model.py            # rebuilds models/bundles/*, prints AUCs

The model is a Mahalanobis distance over (temperature, vibration_rms, pressure, current),
fitted on fault-free data: it learns how the sensors move together with the machine's load,
so a reading that breaks that pattern (a spike, a drift, a worn bearing) lands far away.
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
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from edgecloud.core.events import InferenceResult
from edgecloud.core.readings import Reading
from edgecloud.core.signing import load_private_key, public_key_b64, sign_bundle, write_keypair
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.sim.data import FAULTS, SENSORS, Dataset, generate, roc_auc

HERE = Path(__file__).resolve().parent
F = TensorProto.FLOAT
EWMA_ALPHA = 0.3


@dataclass(frozen=True)
class Params:
    mu: np.ndarray[Any, Any]
    sigma: np.ndarray[Any, Any]
    whiten: np.ndarray[Any, Any]  # W with (x-mu) @ W @ W.T @ (x-mu).T == Mahalanobis d2
    c: float  # d2 quantile that maps to score 0.5
    c_ewma: float


def d2_of(p: Params, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    z = (x - p.mu) @ p.whiten
    return np.asarray((z * z).sum(axis=1))


def ewma(d2: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """EWMA over steps of d2 [devices, steps], starting from 0, as the stateful model does."""
    out, e = np.empty_like(d2), np.zeros(d2.shape[0])
    for t in range(d2.shape[1]):
        e = EWMA_ALPHA * d2[:, t] + (1 - EWMA_ALPHA) * e
        out[:, t] = e
    return out


def train(data: Dataset, quantile: float) -> Params:
    x, _, _ = data.flat()
    mu = x.mean(axis=0)
    cov = np.cov(x.T) + 1e-9 * np.eye(4)
    whiten = np.linalg.inv(np.linalg.cholesky(cov)).T  # z = (x-mu) W has identity covariance
    p = Params(mu, x.std(axis=0), whiten, 1.0, 1.0)
    d2 = d2_of(p, x)
    e = ewma(d2.reshape(data.values.shape[:2]))[:, 20:]  # past the warm-up from 0
    return Params(
        mu, p.sigma, whiten, float(np.quantile(d2, quantile)), float(np.quantile(e, quantile))
    )


def _const(name: str, value: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def export(p: Params, stateful: bool) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Sub", ["features", "mu"], ["centered"]),
        helper.make_node("Div", ["centered", "sigma"], ["zscore"]),
        helper.make_node("MatMul", ["centered", "W"], ["z"]),
        helper.make_node("Mul", ["z", "z"], ["z2"]),
        helper.make_node("ReduceSum", ["z2", "axes"], ["d2"], keepdims=1),
    ]
    inits = [
        _const("mu", p.mu), _const("sigma", p.sigma), _const("W", p.whiten),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("features", F, ["batch", 4])]
    outputs = [helper.make_tensor_value_info("score", F, ["batch", 1])]
    if stateful:
        nodes += [
            helper.make_node("Mul", ["d2", "alpha"], ["new"]),
            helper.make_node("Mul", ["ewma_in", "keep"], ["old"]),
            helper.make_node("Add", ["new", "old"], ["ewma_out"]),
            helper.make_node("Add", ["ewma_out", "c"], ["den"]),
            helper.make_node("Div", ["ewma_out", "den"], ["score"]),
        ]
        inits += [
            _const("alpha", [EWMA_ALPHA]),
            _const("keep", [1 - EWMA_ALPHA]),
            _const("c", [p.c_ewma]),
        ]
        inputs.append(helper.make_tensor_value_info("ewma_in", F, ["batch", 1]))
        outputs.append(helper.make_tensor_value_info("ewma_out", F, ["batch", 1]))
    else:
        nodes += [
            helper.make_node("Add", ["d2", "c"], ["den"]),
            helper.make_node("Div", ["d2", "den"], ["score"]),
        ]
        inits.append(_const("c", [p.c]))
    outputs += [
        helper.make_tensor_value_info("d2", F, ["batch", 1]),
        helper.make_tensor_value_info("zscore", F, ["batch", 4]),
    ]
    graph = helper.make_graph(nodes, "sensor_anomaly", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgecloud"
    )
    model.ir_version = 8  # readable by older onnxruntime builds (Jetson images)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_bundle(
    folder: Path, name: str, version: str, model: onnx.ModelProto, decision: dict[str, Any],
    stateful: bool, metadata: dict[str, Any], key_path: Path,
) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    inputs: dict[str, Any] = {"features": {"from": "values", "names": list(SENSORS)}}
    if stateful:
        inputs["ewma_in"] = {"from": "state", "output": "ewma_out", "initial": {"zeros": [1]}}
    manifest = {
        "name": name,
        "version": version,
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": "Mahalanobis distance of the four sensors from normal operation"
        + (", smoothed per device by an EWMA (stateful)" if stateful else ""),
        "inputs": inputs,
        "outputs": {"score": {"output": "score"}},
        "decision": decision,
        "metadata": metadata,
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    sign_bundle(folder, load_private_key(key_path))
    return folder


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
