"""The port of the retraining job: what the API hands it and what it may raise.

The cloud API calls the function named by the ``retrain_job`` setting as ``job(ctx, req)`` and
expects the outcome dict of ``edgecloud.learning.job.retrain``; another trainer plugs in there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from edgecloud.cloud.registry.service import Limits
from edgecloud.cloud.registry.store import ArtifactStore
from edgecloud.core.errors import ValidationFailed


class UnknownModel(ValidationFailed):
    """No registered version of that name (-> 404)."""


class JobRefused(ValidationFailed):
    """The job cannot run as configured (no signing key, key not trusted) (-> 409)."""


@dataclass(frozen=True)
class RetrainRequest:
    name: str
    since: datetime
    until: datetime
    trainer: str | None = None  # default: the active version's (metadata.trainer, or its kind)
    ground_truth: bool = False  # train on the simulator's labels too
    evaluate_with_ground_truth: bool = False  # score on them (tests, the demo)
    holdout: float = 0.3
    quantile: float = 0.995
    who: str = "operator"


@dataclass
class JobContext:
    engine: Engine
    store: ArtifactStore
    limits: Limits
    signing_key: Path | None
    min_gain: float = 0.02
    metric: str = "f1"
    progress: Callable[[str], None] = field(default=lambda _line: None)
