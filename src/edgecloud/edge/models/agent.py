"""The model agent: makes the node run what the cloud's desired state says (issue 6).

One thread: long-poll ``GET /api/v1/nodes/{id}/desired`` (ETag), and for a new version:
download (resuming) -> verify (sha256 + operator signature) -> load -> shadow (the candidate
beside the active model on live readings; agreement, score drift, error rate, latency) ->
swap through the agent's ``ModelHolder`` (atomic, between two batches: no reading is lost,
processed twice, or held longer than the batch in flight). The replaced model stays loaded
as ``previous``: a rollback to it is a swap, with no download or load. Each step is reported
as a ``model_status`` event (edge broker and/or the cloud API).

State (desired, active, previous, refused artifacts) lives in ``<store>/state.json``,
written atomically after each swap, so a restart resumes the same model. While the cloud is
unreachable the node keeps serving its active model and retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecloud.core.desired import DesiredModel
from edgecloud.core.errors import SignatureError, TransportError, ValidationFailed
from edgecloud.core.events import ModelStatusData, model_status_event
from edgecloud.core.manifest import open_bundle
from edgecloud.core.signing import trusted_keys, verify_bundle
from edgecloud.core.topics import events_topic
from edgecloud.edge.inference.port import InferenceBackend
from edgecloud.edge.models.fetch import CloudClient, unpack
from edgecloud.edge.models.holder import ModelHolder
from edgecloud.edge.models.settings import ModelAgentSettings
from edgecloud.edge.models.shadow import ShadowTap, gate_failure, run_shadow, shadow_case
from edgecloud.edge.models.state import Installed, ModelAgentState

log = logging.getLogger(__name__)
Publish = Callable[[str, str], Any]


class ModelAgent:
    def __init__(
        self,
        settings: ModelAgentSettings,
        holder: ModelHolder,
        publish: Publish | None = None,
        inference_settings: Any = None,
    ) -> None:
        self.s = settings
        self.holder = holder
        self.publish = publish
        self.inference_settings = inference_settings
        self.store = settings.store_dir
        self.state_path = self.store / "state.json"
        self.state = ModelAgentState.load(self.state_path)
        self.previous_backend: InferenceBackend | None = None
        self.stopping = threading.Event()
        self.client = CloudClient(settings.cloud_api_url or "", settings.node_token or "",
                                  settings.node_id)  # fmt: skip
        self.keys = trusted_keys(settings.operator_public_keys)
        self.last_swap_ms: float | None = None
        self.last_swap_wait_ms: float | None = None
        self._thread = threading.Thread(target=self._run, name="model-agent", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.restore()
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.client.close()
        if self.previous_backend is not None:
            self.previous_backend.close()
            self.previous_backend = None

    def restore(self) -> None:
        """After a restart: run the persisted active model again (over a ``--model`` one)."""
        act = self.state.active
        ref = self.holder.backend.ref if self.holder.backend is not None else None
        if act is None or (ref is not None and (ref.name, ref.version) == (act.name, act.version)):
            return
        try:
            backend = self._load(Path(act.folder))
        except Exception as exc:  # keep serving whatever is loaded; the loop will retry
            log.error("persisted model %s:%s not restored: %s", act.name, act.version, exc)
            return
        self._swap(backend, f"cloud:{act.name}:{act.version}")
        log.info("restored model %s:%s", act.name, act.version)

    # --- loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                etag, desired = self.client.desired(self.state.etag, self.s.desired_wait_s)
                if desired is not None:
                    self.state.desired = desired.body()
                    self.reconcile(desired.model)
                    self.state.etag = etag
                    self._save()
            except TransportError as exc:
                log.warning("cloud unreachable, serving the active model: %s", exc)
                self.stopping.wait(self.s.desired_retry_s)
            except Exception:  # process edge: the agent must keep serving whatever happens
                log.exception("model agent step failed; retrying")
                self.stopping.wait(self.s.desired_retry_s)

    def reconcile(self, target: DesiredModel | None) -> None:
        st = self.state
        if target is None:
            if st.active is not None:
                self._back_to_previous(None)
            return
        key = (target.name, target.version)
        rollout_id = target.rollout_id
        if st.active is not None and (st.active.name, st.active.version) == key:
            if st.active.rollout_id != rollout_id:
                st.active.rollout_id = rollout_id
                self.report(target, "active", "already active", {})
            return
        if (
            st.previous is not None
            and (st.previous.name, st.previous.version) == key
            and self._is_rollback(rollout_id)
        ):
            self._back_to_previous(target)
            return
        sha = target.artifact_sha256
        if sha in st.refused:
            if st.refused_for.get(sha) == rollout_id:  # the same rollout asks again: tell it
                phase, _, why = st.refused[sha].partition(": ")
                self.report(target, phase, why, {})
                return
            del st.refused[sha]  # another rollout: evaluate the artifact again
            st.refused_for.pop(sha, None)
        self.install(target)

    def _is_rollback(self, rollout_id: str | None) -> bool:
        """A target naming the held previous version is an instant rollback only when the
        cloud undoes the active model's rollout: the engine's rollback/abort sets no rollout
        id (or the same one). A NEW rollout of that version is installed like any other:
        shadow as its gates say, then ``active``, reported for that rollout."""
        act = self.state.active
        return rollout_id is None or (act is not None and act.rollout_id == rollout_id)

    # --- steps -----------------------------------------------------------------------------
    def install(self, t: DesiredModel) -> None:
        sha = t.artifact_sha256
        self.report(t, "downloading", None, {"bytes": float(t.artifact_size or 0)})
        art_dir = self.store / "artifacts"
        art_dir.mkdir(parents=True, exist_ok=True)
        try:
            artifact = self.client.download(t.artifact_url, sha, art_dir / f"{sha}.tar")
            folder = unpack(artifact, self.store / "bundles" / f"{t.name}-{t.version}-{sha[:12]}")
            verify_bundle(open_bundle(folder), self.keys)
        except (SignatureError, ValidationFailed) as exc:
            return self._refuse(t, "refused", str(exc))
        self.report(t, "verified", None, {})
        try:
            candidate = self._load(folder)
        except Exception as exc:  # any load failure must leave the active model serving
            return self._refuse(t, "failed", f"load: {type(exc).__name__}: {exc}")
        self.report(t, "loaded", None, {})
        metrics: dict[str, float] = {}
        gates = {k: float(v) for k, v in t.shadow.items()}
        want = int(gates.get("shadow_readings", 0))
        active = self.holder.backend
        if active is not None and want > 0:
            tap = ShadowTap(active)
            self.holder.swap(tap, source=self.holder.status.source)
            stats = run_shadow(tap, candidate, want, self.s.shadow_timeout_s, self.stopping)
            metrics = stats.metrics()
            metrics["shadow_dropped"] = float(tap.dropped)
            self.report(t, "shadow", shadow_case(metrics), metrics)
            why = gate_failure(metrics, gates, want, self.s.shadow_timeout_s)
            if why is not None or self.stopping.is_set():
                self.holder.swap(active, source=self.holder.status.source)
                candidate.close()
                if why is None:
                    return None
                return self._refuse(t, "failed", why, metrics)
        source = f"cloud:{t.name}:{t.version}"
        self._swap(candidate, source, keep=active)
        old_active = self.state.active
        if old_active is None and active is not None:
            old_active = Installed(active.ref.name, active.ref.version, self.holder_source(active))
        self.state.previous = old_active
        self.state.active = Installed(t.name, t.version, str(folder), sha, t.rollout_id)
        self._save()
        metrics["swap_ms"] = self.last_swap_ms or 0.0
        metrics["swap_wait_ms"] = self.last_swap_wait_ms or 0.0
        self.report(t, "active", None, metrics)
        return None

    def holder_source(self, backend: InferenceBackend) -> str:
        src = self.holder.status.source if self.holder.status.ref == backend.ref else None
        return src or ""

    def _refuse(
        self, t: DesiredModel, phase: str, why: str, metrics: dict[str, float] | None = None
    ) -> None:
        log.error("model %s:%s %s: %s", t.name, t.version, phase, why)
        self.state.refused[t.artifact_sha256] = f"{phase}: {why}"
        self.state.refused_for[t.artifact_sha256] = t.rollout_id
        self._save()
        self.report(t, phase, why[:500], metrics or {})

    def _back_to_previous(self, target: DesiredModel | None) -> None:
        """Instant rollback: the previous model is still loaded (or on disk after a restart)."""
        st = self.state
        prev, cur = st.previous, st.active
        left = Installed(cur.name, cur.version, cur.folder, None, cur.rollout_id) if cur else None
        if prev is None:
            old = self.holder.swap(None)
            if old is not None:
                old.close()
            st.active = None
        else:
            backend = self.previous_backend
            if backend is None or (backend.ref.name, backend.ref.version) != (
                prev.name,
                prev.version,
            ):
                try:
                    backend = self._load(Path(prev.folder))
                except Exception as exc:  # keep the current one rather than none
                    log.error(
                        "previous model %s:%s cannot be loaded: %s", prev.name, prev.version, exc
                    )
                    return
            self.previous_backend = None
            self._swap(backend, f"cloud:{prev.name}:{prev.version}", keep=self.holder.backend)
            prev.rollout_id = target.rollout_id if target else None
            st.active, st.previous = prev, cur
        self._save()
        if left is not None:
            self.report(
                left,
                "rolled_back",
                "rolled back by the cloud",
                {"swap_ms": self.last_swap_ms or 0.0},
            )

    def _load(self, folder: Path) -> InferenceBackend:
        from edgecloud.edge.inference import InferenceSettings, load_bundle

        settings = (
            self.inference_settings
            if isinstance(self.inference_settings, InferenceSettings)
            else None
        )
        return load_bundle(folder, trusted_keys=self.keys or None, settings=settings)

    def _swap(
        self, new: InferenceBackend, source: str, keep: InferenceBackend | None = None
    ) -> None:
        """Install ``new``; ``keep`` (the model replaced) stays loaded as the previous one."""
        t0 = time.perf_counter()
        old = self.holder.swap(new, source=source)
        self.last_swap_wait_ms = (time.perf_counter() - t0) * 1000.0  # incl. the batch in flight
        self.last_swap_ms = self.holder.last_swap_hold_s * 1000.0  # what inference waited
        if self.previous_backend is not None and self.previous_backend is not keep:
            self.previous_backend.close()
        self.previous_backend = keep
        if old is not None and old is not keep and not isinstance(old, ShadowTap):
            old.close()
        log.info("model swapped: inference held %.3f ms, call %.1f ms: %s",
                 self.last_swap_ms, self.last_swap_wait_ms, source)  # fmt: skip

    def _save(self) -> None:
        self.state.save(self.state_path)

    # --- reports ---------------------------------------------------------------------------
    def report(
        self,
        t: DesiredModel | Installed,
        phase: str,
        detail: str | None,
        metrics: dict[str, float],
    ) -> None:
        data = ModelStatusData.model_validate(
            {"rollout_id": t.rollout_id, "model": t.name, "version": t.version,
             "phase": phase, "detail": detail, "metrics": metrics}
        )  # fmt: skip
        event = model_status_event(self.s.node_id, data)
        text = event.to_json()
        if self.publish is not None and self.s.model_status_via in ("mqtt", "both"):
            try:
                self.publish(events_topic(self.s.node_id, "model_status"), text)
            except Exception as exc:  # the broker may be down: the HTTP path may still work
                log.warning("model_status not published on the broker: %s", exc)
        if self.s.model_status_via in ("http", "both") or self.publish is None:
            try:
                self.client.post_status(text)
            except TransportError as exc:
                log.warning("model_status not posted to the cloud: %s", exc)


def maybe_start(
    settings: ModelAgentSettings,
    holder: ModelHolder,
    publish: Publish | None,
    inference_settings: Any,
) -> ModelAgent | None:
    """Start a model agent when the cloud URL and node token are set (else None)."""
    if not settings.enabled:
        return None
    agent = ModelAgent(settings, holder, publish, inference_settings)
    agent.start()
    return agent
