"""The sensor anomaly trainers: fit with numpy, export ONNX, write the bundle folder.

One code path for the shipped bundles (``models/build_model.py``) and the cloud's retraining
job (``learning/job.py``): both call ``train``, ``export`` and ``write_bundle`` here.

- ``mahalanobis`` (pointwise): the Mahalanobis distance d2 of (temperature, vibration_rms,
  pressure, current) from normal operation; score = d2 / (d2 + c), c the ``quantile`` of d2 on
  normal data (score 0.5 there). It learns how the sensors move together with the load, so a
  spike, a drift or a worn bearing lands far away; a stuck sensor does not (it repeats a
  plausible value).
- ``mahalanobis-ewma`` (stateful): the same d2 smoothed per device by an EWMA fed back as state.
- ``temporal`` (stateful, a window per device): the pointwise score, and per sensor the run
  length of exactly repeated values, kept by the agent as state (``prev_in``/``prev_out``,
  ``run_in``/``run_out``). score = max(d2/(d2+c), r/(r+k)) with r the longest current run and
  k learned from normal data (the run length it reaches, plus a half), so a stuck sensor crosses
  0.5 one repeat after anything normal data ever showed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgecloud.adapters import onnx_graph as og
from edgecloud.core.signing import load_private_key, sign_bundle
from edgecloud.sim.data import SENSORS

F = og.FLOAT
EWMA_ALPHA = 0.3
TRAINERS = ("mahalanobis", "mahalanobis-ewma", "temporal")
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Params:
    mu: Array
    sigma: Array
    whiten: Array  # W with (x-mu) @ W @ W.T @ (x-mu).T == Mahalanobis d2
    c: float  # d2 quantile that maps to score 0.5
    c_ewma: float
    k_run: float = 1.5  # temporal: run length that maps to score 0.5


def d2_of(p: Params, x: Array) -> Array:
    z = (x - p.mu) @ p.whiten
    return np.asarray((z * z).sum(axis=1))


def ewma(d2: Array) -> Array:
    """EWMA over steps of d2 [devices, steps], starting from 0, as the stateful model does."""
    out, e = np.empty_like(d2), np.zeros(d2.shape[0])
    for t in range(d2.shape[1]):
        e = EWMA_ALPHA * d2[:, t] + (1 - EWMA_ALPHA) * e
        out[:, t] = e
    return out


# A sensor that repeats its exact value this many times in a row is stuck whatever the data
# says: sensor noise at the published precision makes even one repeat rare. The cap keeps
# unlabelled stuck faults in the training rows from teaching the model that runs are normal.
MAX_NORMAL_RUN = 3


def longest_repeat_run(series: list[Array], quantile: float = 0.999) -> int:
    """The run length of exactly repeated values (any sensor) that normal data reaches: the
    ``quantile`` over readings of per-device sequences (each [steps, 4], in order), at most
    ``MAX_NORMAL_RUN``. The temporal model's k is this plus a half."""
    runs: list[Array] = []
    for seq in series:
        if len(seq) < 2:
            continue
        same = seq[1:] == seq[:-1]  # [steps-1, 4]
        run = np.zeros(seq.shape[1], np.int64)
        out = np.empty(len(same), np.int64)
        for i, row in enumerate(same):
            run = (run + 1) * row
            out[i] = run.max()
        runs.append(out)
    if not runs:
        return 0
    return min(int(np.quantile(np.concatenate(runs), quantile)), MAX_NORMAL_RUN)


def train(
    x: Array, quantile: float, *, shape: tuple[int, int] | None = None, max_run: int = 0
) -> Params:
    """Fit on normal rows ``x`` [n, 4]. ``shape`` (devices, steps): x is a regular grid, so the
    EWMA quantile is fitted too (past a 20-step warm-up from 0); ``max_run``: the longest
    repeat run of normal data (temporal)."""
    mu = x.mean(axis=0)
    cov = np.cov(x.T) + 1e-9 * np.eye(4)
    whiten = np.linalg.inv(np.linalg.cholesky(cov)).T  # z = (x-mu) W has identity covariance
    p = Params(mu, x.std(axis=0), whiten, 1.0, 1.0)
    d2 = d2_of(p, x)
    c_ewma = 1.0
    if shape is not None:
        e = ewma(d2.reshape(shape))[:, 20:]
        c_ewma = float(np.quantile(e, quantile))
    return Params(
        mu, p.sigma, whiten, float(np.quantile(d2, quantile)), c_ewma, k_run=max_run + 0.5
    )


def _const(name: str, value: Any) -> og.Tensor:
    return og.const(np.asarray(value, np.float32), name)


def export(p: Params, stateful: bool, *, temporal: bool = False) -> og.ModelProto:
    nodes = [
        og.node("Sub", ["features", "mu"], ["centered"]),
        og.node("Div", ["centered", "sigma"], ["zscore"]),
        og.node("MatMul", ["centered", "W"], ["z"]),
        og.node("Mul", ["z", "z"], ["z2"]),
        og.node("ReduceSum", ["z2", "axes"], ["d2"], keepdims=1),
    ]
    inits = [
        _const("mu", p.mu), _const("sigma", p.sigma), _const("W", p.whiten),
        og.const(np.array([1], np.int64), "axes"),
    ]  # fmt: skip
    inputs = [og.value("features", F, ["batch", 4])]
    outputs = [og.value("score", F, ["batch", 1])]
    if temporal:
        nodes += _temporal_nodes()
        inits += [_const("c", [p.c]), _const("one", [1.0]), _const("k", [p.k_run])]
        for name, width in (("prev_in", 4), ("run_in", 4)):
            inputs.append(og.value(name, F, ["batch", width]))
        for name, width in (("prev_out", 4), ("run_out", 4), ("run_max", 1)):
            outputs.append(og.value(name, F, ["batch", width]))
    elif stateful:
        nodes += [
            og.node("Mul", ["d2", "alpha"], ["new"]),
            og.node("Mul", ["ewma_in", "keep"], ["old"]),
            og.node("Add", ["new", "old"], ["ewma_out"]),
            og.node("Add", ["ewma_out", "c"], ["den"]),
            og.node("Div", ["ewma_out", "den"], ["score"]),
        ]
        inits += [
            _const("alpha", [EWMA_ALPHA]),
            _const("keep", [1 - EWMA_ALPHA]),
            _const("c", [p.c_ewma]),
        ]
        inputs.append(og.value("ewma_in", F, ["batch", 1]))
        outputs.append(og.value("ewma_out", F, ["batch", 1]))
    else:
        nodes += [
            og.node("Add", ["d2", "c"], ["den"]),
            og.node("Div", ["d2", "den"], ["score"]),
        ]
        inits.append(_const("c", [p.c]))
    outputs += [
        og.value("d2", F, ["batch", 1]),
        og.value("zscore", F, ["batch", 4]),
    ]
    graph = og.graph(nodes, "sensor_anomaly", inputs, outputs, initializer=inits)
    model = og.make_model(graph, opset_imports=[og.opset("", 17)], producer_name="edgecloud")
    model.ir_version = 8  # readable by older onnxruntime builds (Jetson images)
    og.check(model, full_check=True)
    return model


def _temporal_nodes() -> list[og.NodeProto]:
    """run_out = (run_in + 1) * (features == prev_in), per sensor; prev_out = features;
    score = max(d2/(d2+c), r/(r+k)) with r = max over sensors of run_out."""
    return [
        og.node("Add", ["d2", "c"], ["den"]),
        og.node("Div", ["d2", "den"], ["point"]),
        og.node("Equal", ["features", "prev_in"], ["same_b"]),
        og.node("Cast", ["same_b"], ["same"], to=F),
        og.node("Add", ["run_in", "one"], ["run_next"]),
        og.node("Mul", ["run_next", "same"], ["run_out"]),
        og.node("Identity", ["features"], ["prev_out"]),
        og.node("ReduceMax", ["run_out"], ["run_max"], axes=[1], keepdims=1),
        og.node("Add", ["run_max", "k"], ["run_den"]),
        og.node("Div", ["run_max", "run_den"], ["stuck"]),
        og.node("Max", ["point", "stuck"], ["score"]),
    ]


def description(stateful: bool, temporal: bool = False) -> str:
    text = "Mahalanobis distance of the four sensors from normal operation"
    if temporal:
        return text + ", and per device the run length of repeated values (stateful window)"
    return text + (", smoothed per device by an EWMA (stateful)" if stateful else "")


def write_bundle(
    folder: Path, name: str, version: str, model: og.ModelProto, decision: dict[str, Any],
    stateful: bool, metadata: dict[str, Any], key_path: Path, *, temporal: bool = False,
) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    inputs: dict[str, Any] = {"features": {"from": "values", "names": list(SENSORS)}}
    if temporal:
        inputs["prev_in"] = {"from": "state", "output": "prev_out", "initial": {"zeros": [4]}}
        inputs["run_in"] = {"from": "state", "output": "run_out", "initial": {"zeros": [4]}}
    elif stateful:
        inputs["ewma_in"] = {"from": "state", "output": "ewma_out", "initial": {"zeros": [1]}}
    manifest = {
        "name": name,
        "version": version,
        "runtime": "onnx",
        "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": description(stateful, temporal),
        "inputs": inputs,
        "outputs": {"score": {"output": "score"}},
        "decision": decision,
        "metadata": metadata,
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    sign_bundle(folder, load_private_key(key_path))
    return folder


def ewma_quantile(p: Params, series: list[Array], quantile: float, warmup: int = 20) -> float:
    """The EWMA model's c from per-device sequences of any length (past a warm-up from 0)."""
    tails = [ewma(d2_of(p, s)[None, :])[0, warmup:] for s in series if len(s) > warmup]
    if not tails:
        return 1.0
    return float(np.quantile(np.concatenate(tails), quantile))
