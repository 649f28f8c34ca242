"""Labels of readings, kept apart by source, and the evaluations of retrained candidates.

Three sources, one row each per reading (``labels``, unique on ``(event_id, source)``):

- ``escalation``: the heavy model's verdict, mapped from its severity (``low`` -> normal,
  ``medium`` / ``high`` / ``critical`` -> anomalous), written by the worker with the verdict;
- ``operator``: ``POST /api/v1/anomalies/{event_id}/feedback`` (``true_positive`` and
  ``missed`` -> anomalous, ``false_positive`` -> normal) with a note; the latest answer wins;
- ``simulator``: the ground truth of injected faults (``POST /api/v1/labels/ground-truth``),
  with the fault kind; never used for training unless a retrain asks for it.
"""
