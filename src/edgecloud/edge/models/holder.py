"""The active model of the agent, behind a holder with an atomic ``swap``.

The batch loop calls ``infer`` once per batch; ``POST /infer`` calls it for one reading. Calls
are serialised by a lock (a stateful model keeps per-device state that two callers must not
interleave), and ``swap`` takes the same lock, so a batch runs wholly on the old or wholly on
the new backend. The model agent of rollouts (issue 6) swaps through here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgecloud.core.events import ModelRef
from edgecloud.core.readings import Reading
from edgecloud.edge.inference.port import InferenceBackend, Outcome

log = logging.getLogger(__name__)

ModelState = Literal["none", "loaded", "failed"]


@dataclass(frozen=True)
class ModelStatus:
    state: ModelState
    ref: ModelRef | None = None
    source: str | None = None
    error: str | None = None


class ModelHolder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backend: InferenceBackend | None = None
        self._status = ModelStatus("none")
        self.last_swap_hold_s = 0.0

    @property
    def status(self) -> ModelStatus:
        return self._status

    @property
    def backend(self) -> InferenceBackend | None:
        return self._backend

    def active_models(self) -> list[ModelRef]:
        backend = self._backend
        return [backend.ref] if backend is not None else []

    def swap(
        self, new: InferenceBackend | None, *, source: str | None = None
    ) -> InferenceBackend | None:
        """Install ``new`` (None unloads); returns the previous backend, for the caller to close."""
        with self._lock:
            t0 = time.perf_counter()
            old, self._backend = self._backend, new
            self._status = (
                ModelStatus("loaded", new.ref, source) if new is not None else ModelStatus("none")
            )
            self.last_swap_hold_s = time.perf_counter() - t0  # inference blocked this long
        return old

    def failed(self, source: str, error: str) -> None:
        """Record a model that could not be loaded; the agent keeps running without one."""
        with self._lock:
            if self._backend is None:
                self._status = ModelStatus("failed", None, source, error)

    def infer(self, readings: Sequence[Reading]) -> list[Outcome] | None:
        """Outcomes in order, or None when no model is active."""
        with self._lock:
            backend = self._backend
            if backend is None:
                return None
            return backend.infer_batch(readings)

    def close(self) -> None:
        old = self.swap(None)
        if old is not None:
            old.close()


def load_into(holder: ModelHolder, path: Path, trusted_keys: str, settings: object) -> bool:
    """Load the bundle at ``path`` into ``holder``; on any failure record it and return False.

    ``trusted_keys`` empty: the inference settings' own ``operator_public_keys`` apply.
    """
    from edgecloud.edge.inference import InferenceSettings, load_bundle

    try:
        backend = load_bundle(
            path,
            trusted_keys=trusted_keys or None,
            settings=settings if isinstance(settings, InferenceSettings) else None,
        )
    except Exception as exc:  # process edge: any broken bundle must leave the agent serving
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "model not loaded, running without one", extra={"model": str(path), "error": error}
        )
        holder.failed(str(path), error)
        return False
    old = holder.swap(backend, source=str(path))
    if old is not None:
        old.close()
    log.info("model loaded", extra={"model": backend.ref.name, "version": backend.ref.version})
    return True
