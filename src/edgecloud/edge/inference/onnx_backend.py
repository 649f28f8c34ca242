"""The ``onnx`` backend: one onnxruntime session, batches filled per the manifest's plan."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgecloud.adapters.onnx import OnnxSession
from edgecloud.core.errors import ModelError
from edgecloud.core.events import InferenceResult, ModelRef
from edgecloud.core.manifest import Bundle
from edgecloud.core.outputs import OutputMap, row_of
from edgecloud.core.plan import Array, FeedPlan, build_plan
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceFailure, ModelRefused, Outcome
from edgecloud.edge.inference.settings import InferenceSettings

log = logging.getLogger(__name__)
_RESULT_FIELDS = frozenset(InferenceResult.model_fields)
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
        """The whole batch by columns (``_infer_columns``) where the model and the batch allow
        it, else reading by reading (``infer_rows``); both give the same outcomes."""
        if self.plan.dynamic and readings:
            cols = self.plan.columns(readings)
            if cols is not None:
                return self._infer_columns(readings, cols)
        return self.infer_rows(readings)

    def infer_rows(self, readings: Sequence[Reading]) -> list[Outcome]:
        """The reference path: each reading's inputs extracted and checked on their own, runs
        grouped by array length, outputs mapped per reading."""
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
            rounds = [[items[i] for i in rnd] for rnd in _rounds([it[1].device_id for it in items])]
        size = self._max_batch if self.plan.dynamic else 1
        chunks: list[list[Item]] = []
        for rnd in rounds:
            groups: dict[tuple[int, ...], list[Item]] = {}
            for item in rnd:
                groups.setdefault(tuple(a.shape for a in item[2].values()), []).append(item)
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

    # -- the batch by columns -----------------------------------------------------------------

    def _infer_columns(self, readings: Sequence[Reading], cols: dict[str, Array]) -> list[Outcome]:
        """One run per ``max_batch`` readings on arrays built for the whole batch, outputs mapped
        by column. A stateful model runs in rounds as in ``_chunks``: a device's k-th reading of
        the batch in round k, so each run sees the state its previous reading left."""
        n = len(readings)
        results: list[Outcome | None] = [None] * n
        size = self._max_batch
        if self.plan.stateful:
            rounds = _rounds([r.device_id for r in readings])
            chunks = [rnd[i : i + size] for rnd in rounds for i in range(0, len(rnd), size)]
        else:
            chunks = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
        with self._lock:
            for positions in chunks:
                if len(positions) == n:
                    sub = cols  # the whole batch in one run
                elif self.plan.stateful:
                    index = np.asarray(positions)
                    sub = {k: v[index] for k, v in cols.items()}
                else:
                    sub = {k: v[positions[0] : positions[-1] + 1] for k, v in cols.items()}
                self._run_columns(readings, positions, sub, results)
        return results  # type: ignore[return-value]

    def _run_columns(
        self,
        readings: Sequence[Reading],
        positions: list[int],
        cols: dict[str, Array],
        results: list[Outcome | None],
    ) -> None:
        n = len(positions)
        t0 = time.perf_counter()
        states = (
            [self._state_of(readings[p].device_id) for p in positions] if self.plan.stateful else []
        )
        try:
            outs = self._session.run(self.plan.stacked_feeds(cols, n, states))
        except ModelError:
            # the reference path finds the reading(s) the runtime cannot take (state untouched)
            items: list[Item] = []
            for p in positions:
                rows = self.plan.extract(readings[p])
                assert not isinstance(rows, InferenceFailure)  # columns() took every reading
                items.append((p, readings[p], rows))
            self._run(items, results)
            return
        latency_ms = round((time.perf_counter() - t0) * 1000.0, 3)
        if self.plan.stateful:
            for i, p in enumerate(positions):
                self._keep_state(readings[p].device_id, outs, i, n)
        mapped = self._outputs.map_columns(outs, n)
        if isinstance(mapped, InferenceFailure):
            for p in positions:
                results[p] = mapped
            return
        m = self.manifest
        anomaly = mapped.flags(m.decision.anomaly, n)
        escalate = mapped.flags(m.decision.escalate, n)
        score = mapped.numbers["score"].tolist() if "score" in mapped.numbers else [None] * n
        conf = (
            mapped.numbers["confidence"].tolist() if "confidence" in mapped.numbers else [None] * n
        )
        labels = mapped.labels if mapped.labels is not None else [None] * n
        if not mapped.raw:
            raw: list[dict[str, Any]] = [{} for _ in range(n)]
        else:  # one dict a reading, filled output by output (cheaper than dict(zip(...)))
            name, values = mapped.raw[0]
            raw = [{name: v} for v in values]
            for name, values in mapped.raw[1:]:
                for out, v in zip(raw, values, strict=True):
                    out[name] = v
        name, version, failed = m.name, m.version, mapped.failed
        for i, (p, out, s, lab, c, a, e) in enumerate(
            zip(positions, raw, score, labels, conf, anomaly, escalate, strict=True)
        ):
            if failed and i in failed:
                results[p] = failed[i]
                continue
            results[p] = result_of(
                {"model": name, "version": version, "outputs": out, "score": s, "label": lab,
                 "confidence": c, "anomaly": a, "escalate": e, "latency_ms": latency_ms}
            )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._states.clear()


def _rounds(device_ids: Sequence[str]) -> list[list[int]]:
    """Positions by round, for a stateful model: a device's k-th reading goes to round k, so
    each run sees the state the device's previous reading left."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for pos, device in enumerate(device_ids):
        k = seen[device] = seen.get(device, -1) + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(pos)
    return rounds


def result_of(fields: dict[str, Any]) -> InferenceResult:
    """``InferenceResult.model_construct(**fields)`` for all of its fields, in their order,
    without pydantic's generic per-field work (~8 us a reading here): values this backend made."""
    r = InferenceResult.__new__(InferenceResult)
    set_ = object.__setattr__
    set_(r, "__dict__", fields)
    set_(r, "__pydantic_fields_set__", set(_RESULT_FIELDS))
    set_(r, "__pydantic_extra__", None)
    set_(r, "__pydantic_private__", None)
    return r
