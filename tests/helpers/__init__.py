"""Helpers shared by the test tree (issue 17), imported as ``helpers.<module>``.

The suite has no ``__init__`` packages: pytest's default ``prepend`` import mode puts the folder
of each rootless test module and of ``tests/conftest.py`` on ``sys.path``, so ``tests/`` is on it
and this package imports as ``helpers`` from every test. Test basenames stay unique; nothing
here is collected (no ``test_*`` names).
"""
