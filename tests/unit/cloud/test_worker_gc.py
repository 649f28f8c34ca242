"""tune_gc(): start-up objects frozen out of the collector's sight, a larger young generation."""

from __future__ import annotations

import gc

from edgecloud.core.gctune import GC_YOUNG_THRESHOLD, tune_gc


def test_tune_gc_freezes_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
