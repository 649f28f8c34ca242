"""Staged rollouts of registered models to edge nodes (issue 6).

tables.py   rollouts, rollout_nodes, node_desired
plan.py     pure: gates, wave sizes, node verdicts
engine.py   the state machine on the database (start, tick, pause/resume/abort)
desired.py  what a node should run (the body and ETag of GET .../desired)
runtime.py  the background task in the API process that ticks the engine
"""
