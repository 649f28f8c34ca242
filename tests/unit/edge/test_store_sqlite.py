"""The local store on SQLite (the quick-run database): one batch, outbox, retention."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgecloud.edge.batch import classify
from edgecloud.edge.migrations import migrate
from edgecloud.edge.store import Store


@dataclass
class Msg:
    topic: str
    payload: bytes
    received_at: float


def msgs(device: str, seqs: range, at: float) -> list[Msg]:
    return [
        Msg(f"devices/{device}/telemetry", json.dumps(
            {"device_id": device, "seq": s, "ts": 1.0, "values": {"t": s}}).encode(), at)
        for s in seqs
    ]  # fmt: skip


def test_batch_outbox_and_retention_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    migrate(url)
    store = Store(url)
    try:
        old = time.time() - 7200
        plan = classify([*msgs("a", range(5), old), Msg("devices/a/telemetry", b"{", old)],
                        store.last_seqs(), store.lookup, 65536)  # fmt: skip
        w1 = store.write(plan)
        assert (w1.inserted, store.counts()) == (5, {"readings": 5, "dead_letters": 1})
        assert store.last_seqs() == {"a": 4}
        # a replay of seq 3 and 4 plus new 5..7: looked up, 2 duplicates, 3 new
        plan2 = classify(msgs("a", range(3, 8), time.time()), store.last_seqs(), store.lookup,
                         65536)  # fmt: skip
        assert (plan2.duplicates, len(plan2.accepted)) == (2, 3)
        w2 = store.write(plan2)
        assert w2.inserted == 3 and w2.batch_id is not None and w1.batch_id is not None
        assert [b for b, _ in store.unpublished()] == [w1.batch_id, w2.batch_id]
        assert store.unpublished_count() == 8
        store.mark_published({w1.batch_id: time.time()})
        assert [(b, len(rows)) for b, rows in store.unpublished()] == [(w2.batch_id, 3)]
        # retention: only the published, old batch goes (in chunks of 2)
        cutoff = datetime.now(UTC) - timedelta(hours=1)
        assert store.delete_older_than(cutoff, 2) == 5
        assert store.counts() == {"readings": 3, "dead_letters": 0}
    finally:
        store.close()
