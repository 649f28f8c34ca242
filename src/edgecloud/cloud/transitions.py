"""Rollout and node transitions on Dapr pub/sub (``pubsub.kafka``, component ``cloud-pubsub``).

Topics (prefix ``EDGECLOUD_DAPR_TOPIC_PREFIX``, default ``edgecloud.dapr.``, the prefix the
``dapr-cloud`` Kafka principal may use):

- ``<prefix>rollouts``: ``rollout.started``, ``rollout.wave_passed``, ``rollout.completed``,
  ``rollout.rolled_back``, ``rollout.paused``, ``rollout.resumed``; Kafka key the rollout id.
- ``<prefix>nodes``: ``node.online``, ``node.offline``; Kafka key the node id.

The key keeps one rollout's (one node's) transitions on one partition, so a subscriber gets
them in order. daprd wraps each in a CloudEvent 1.0; the event below is its ``data``, with an
``id`` that is the same if a transition were ever sent twice (subscribers may dedupe on it).
The database commit comes first; a publish that fails is counted and dropped (``dapr_out``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edgecloud.cloud.dapr_out import DaprOut
from edgecloud.cloud.presence import NodeTransition
from edgecloud.cloud.rollouts.engine import Transition
from edgecloud.core.errors import ConfigError

TOPIC_PREFIX = "edgecloud.dapr."
SCHEMA = "edgecloud.transition/v1"


def topics(prefix: str) -> dict[str, str]:
    if not prefix.startswith(TOPIC_PREFIX):
        raise ConfigError(f"the Dapr topic prefix must start with {TOPIC_PREFIX!r}: {prefix!r}")
    return {"rollouts": f"{prefix}rollouts", "nodes": f"{prefix}nodes"}


def rollout_event(t: Transition, ts: datetime) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "id": f"{t.rollout_id}:{t.kind}:{t.wave}", "type": f"rollout.{t.kind}",
        "ts": ts.isoformat(), "rollout_id": t.rollout_id, "model": t.model,
        "version": t.version, "state": t.state, "wave": t.wave, "waves": t.waves,
        "detail": t.detail,
    }  # fmt: skip


def node_event(t: NodeTransition, ts: datetime) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "id": f"{t.node_id}:{t.status}:{t.last_heartbeat.isoformat()}",
        "type": f"node.{t.status}", "ts": ts.isoformat(), "node_id": t.node_id,
        "last_heartbeat": t.last_heartbeat.isoformat(),
    }  # fmt: skip


class TransitionPublisher:
    def __init__(self, out: DaprOut, prefix: str = TOPIC_PREFIX) -> None:
        self.out = out
        self.topics = topics(prefix)

    def rollout(self, t: Transition, ts: datetime) -> None:
        body = json.dumps(rollout_event(t, ts)).encode()
        self.out.offer(self.topics["rollouts"], body, {"partitionKey": t.rollout_id})

    def node(self, t: NodeTransition, ts: datetime) -> None:
        body = json.dumps(node_event(t, ts)).encode()
        self.out.offer(self.topics["nodes"], body, {"partitionKey": t.node_id})

    def stop(self) -> None:
        self.out.stop()
