"""``main(settings)``: the sync bridge's process, once its settings tree is built.

The CLI (``edgecloud bridge run``) builds the tree and configures logging; this installs the
signal handlers and runs the bridge until SIGTERM / SIGINT (the spool recovers itself, there is
no schema to migrate). Errors are ``EdgecloudError`` for the CLI to print.
"""

from __future__ import annotations

import signal
import threading

from edgecloud.sync.settings import BridgeSettings


def main(settings: BridgeSettings, stop: threading.Event | None = None) -> None:
    from edgecloud.sync.bridge import Bridge

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    Bridge(settings, stop, tune_gc=True).run()
