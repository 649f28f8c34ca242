"""The cloud learning loop: labels -> training set -> trainer -> signed candidate -> evaluation
on a held-out time window -> registry (and a shadow rollout). See docs/learning.md.

This package sits above ``cloud`` and ``edge``: it reads the cloud database, trains with
``trainer`` (the same code that builds the shipped bundles in ``models/``), and scores bundles
through the edge agent's own inference path (``edgecloud.edge.inference``), so an evaluation
sees what an agent would. The cloud API reaches it only through the ``retrain_job`` setting (a
dotted path, the plug-in point for another trainer), never by a static import.
"""
