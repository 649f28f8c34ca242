"""``consumer_lag``: librdkafka's statistics document -> messages behind per topic."""

from __future__ import annotations

import json

from edgecloud.adapters.kafka_consumer import consumer_lag


def test_lag_sums_assigned_partitions_and_skips_unknown_ones() -> None:
    stats = {
        "topics": {
            "edgecloud.readings": {
                "partitions": {
                    "0": {"consumer_lag": 120},
                    "1": {"consumer_lag": 5},
                    "2": {"consumer_lag": -1},  # not assigned to us / no committed offset
                    "-1": {"consumer_lag": 999},  # librdkafka's internal UA partition
                }
            },
            "edgecloud.heartbeats": {"partitions": {"0": {"consumer_lag": 0}}},
            "edgecloud.model-status": {"partitions": {"0": {"consumer_lag": -1}}},
        }
    }
    assert consumer_lag(json.dumps(stats)) == {"edgecloud.readings": 125, "edgecloud.heartbeats": 0}


def test_bad_or_empty_stats_give_no_lag() -> None:
    assert consumer_lag("not json") == {}
    assert consumer_lag("{}") == {}
