"""The ``onnx`` backend: one onnxruntime session, batches filled per the manifest's plan."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from edgecloud.adapters.onnx import OnnxSession
from edgecloud.core.errors import ModelError
from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.manifest import Bundle
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.outputs import OutputMap, row_of
from edgecloud.edge.inference.plan import Array, FeedPlan, build_plan
from edgecloud.edge.inference.port import InferenceFailure, ModelRefused, Outcome
from edgecloud.edge.inference.settings import InferenceSettings

log = logging.getLogger(__name__)
Item = tuple[int, Reading, dict[str, Array]]  # (position in the batch, reading, its rows)


class OnnxBackend:
    def __init__(self, bundle: Bundle, settings: InferenceSettings) -> None:
        m = bundle.manifest
        assert bundle.model_path is not None
        self.ref = ModelRef(name=m.name, version=m.version)
        self.manifest = m
        self._max_batch = settings.inference_max_batch
        self._max_devices = settings.inference_max_state_devices
        try:
            self._session = OnnxSession(
                bundle.model_path,
                providers=settings.providers,
                intra_op_threads=settings.ort_intra_op_threads,
                inter_op_threads=settings.ort_inter_op_threads,
                allow_spinning=settings.ort_allow_spinning,
            )
        except ModelError as exc:
            raise ModelRefused("unloadable", str(exc)) from exc
        self.providers = self._session.providers
        self.plan: FeedPlan = build_plan(m, self._session.inputs, self._session.outputs)
        self._outputs = OutputMap.build(m, self._session.outputs)
        self._states: OrderedDict[str, dict[str, Array]] = OrderedDict()
        self._lock = threading.Lock()
        log.info(
            "model %s loaded: %s batches, %s",
            m.ref, "dynamic" if self.plan.dynamic else "per-reading",
            "stateful" if self.plan.stateful else "stateless",
        )  # fmt: skip

    # -- state ------------------------------------------------------------------------------

    def _state_of(self, device_id: str) -> dict[str, Array]:
        state = self._states.get(device_id)
        if state is None:
            state = {p.name: p.value for p in self.plan.state_inputs if p.value is not None}
            self._states[device_id] = state
            if len(self._states) > self._max_devices:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(device_id)
        return state

    def _keep_state(self, device_id: str, outs: dict[str, Any], i: int, n: int) -> None:
        state = self._state_of(device_id)
        for p in self.plan.state_inputs:
            row = row_of(outs[p.spec.output], i, n)  # type: ignore[union-attr]
            state[p.name] = row.astype(p.dtype, copy=True).reshape(state[p.name].shape)

    # -- runs -------------------------------------------------------------------------------

    def infer_batch(self, readings: Sequence[Reading]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(readings)
        items: list[Item] = []
        for pos, reading in enumerate(readings):
            rows = self.plan.extract(reading)
            if isinstance(rows, InferenceFailure):
                results[pos] = rows
            else:
                items.append((pos, reading, rows))
        with self._lock:
            for chunk in self._chunks(items):
                self._run(chunk, results)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _chunks(self, items: list[Item]) -> list[list[Item]]:
        """Runs in order: rounds (a device's k-th reading in round k, for state), then groups
        of equal array lengths, then at most ``max_batch`` (1 without a dynamic batch axis)."""
        rounds: list[list[Item]] = [items]
        if self.plan.stateful:
            rounds = []
            seen: dict[str, int] = {}
            for item in items:
                k = seen[item[1].device_id] = seen.get(item[1].device_id, -1) + 1
                if k == len(rounds):
                    rounds.append([])
                rounds[k].append(item)
        size = self._max_batch if self.plan.dynamic else 1
        chunks: list[list[Item]] = []
        for rnd in rounds:
            groups: dict[tuple[int, ...], list[Item]] = {}
            for item in rnd:
                groups.setdefault(tuple(a.shape[0] for a in item[2].values()), []).append(item)
            for group in groups.values():
                chunks.extend(group[i : i + size] for i in range(0, len(group), size))
        return chunks

    def _run(self, chunk: list[Item], results: list[Outcome | None]) -> None:
        n = len(chunk)
        t0 = time.perf_counter()
        states = [self._state_of(r.device_id) for _, r, _ in chunk] if self.plan.stateful else []
        try:
            outs = self._session.run(self.plan.feeds([rows for _, _, rows in chunk], states))
        except ModelError as exc:
            if n > 1:  # find the reading(s) the runtime cannot take; the rest still run
                for item in chunk:
                    self._run([item], results)
                return
            results[chunk[0][0]] = InferenceFailure("model_error", str(exc))
            return
        latency_ms = (time.perf_counter() - t0) * 1000.0
        m = self.manifest
        anomaly, escalate = m.decision.anomaly, m.decision.escalate
        if self.plan.stateful:
            for i, (_, reading, _) in enumerate(chunk):
                self._keep_state(reading.device_id, outs, i, n)
        for (pos, _, _), mapped in zip(chunk, self._outputs.map_batch(outs, n), strict=True):
            if isinstance(mapped, InferenceFailure):
                results[pos] = mapped
                continue
            picked, raw = mapped
            score, label, conf = picked.get("score"), picked.get("label"), picked.get("confidence")
            # built from values this backend made (model_construct: no re-validation)
            results[pos] = InferenceResult.model_construct(
                model=m.name,
                version=m.version,
                outputs=raw,
                score=score,
                label=label,
                confidence=conf,
                anomaly=anomaly.holds(score, label, conf),
                escalate=escalate.holds(score, label, conf) if escalate else False,
                latency_ms=round(latency_ms, 3),
            )

    def close(self) -> None:
        with self._lock:
            self._states.clear()
