"""Tooling the tests and ``edgecloud bench`` share, kept out of the role packages (issue 17):
``edge_process`` runs ``edgecloud edge run`` as a child process; ``tally`` is the deterministic
event stream and the tally of what came out of Kafka (nothing lost, duplicates, per-key order).
Imports only ``core`` and the standard library; no role imports it."""
