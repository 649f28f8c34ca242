"""The shared contract: reading and event models, settings, errors, logging.

Nothing here imports a protocol SDK (enforced by import-linter, see pyproject.toml).
"""
