"""Time the bundled model: raw onnxruntime batch runs vs edgecloud's infer_batch (same batches).

.venv/bin/python models/time_inference.py [--batch 256] [--seconds 3] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgecloud.core.readings import Reading
from edgecloud.edge.inference import InferenceSettings, load_bundle
from edgecloud.sim.data import SENSORS, generate

HERE = Path(__file__).resolve().parent


def rate(fn: object, n_per_call: int, seconds: float) -> float:
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()  # type: ignore[operator]
        calls += 1
    return calls * n_per_call / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--bundle", type=Path, default=HERE / "bundles/sensor-anomaly/1.0.0")
    args = parser.parse_args()
    x = generate(args.batch, 1, seed=1).values.reshape(-1, 4)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(
        str(args.bundle / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    feats = {"features": x.astype(np.float32)}
    if any(i.name == "ewma_in" for i in sess.get_inputs()):
        feats["ewma_in"] = np.zeros((args.batch, 1), np.float32)
    raw = rate(lambda: sess.run(None, feats), args.batch, args.seconds)
    pub = (HERE / "dev-keys/dev.pub").read_text().strip()
    backend = load_bundle(args.bundle, trusted_keys=[pub], settings=InferenceSettings())
    readings = [
        Reading(device_id=f"d{i}", seq=i, ts="2026-01-01T00:00:00Z",
                values=dict(zip(SENSORS, map(float, row), strict=True)))
        for i, row in enumerate(x)
    ]  # fmt: skip
    full = rate(lambda: backend.infer_batch(readings), args.batch, args.seconds)
    print(f"bundle {args.bundle} batch {args.batch}, CPU, 1 thread")
    print(f"onnxruntime session.run alone: {raw:,.0f} readings/s")
    print(f"edgecloud infer_batch (fill + run + map + decide): {full:,.0f} readings/s")


if __name__ == "__main__":
    main()
