"""``main(settings)``: the edge agent's process, once its settings tree is built.

The CLI (``edgecloud edge run``) only builds the tree (flags over Dapr secrets over the
environment) and configures logging; this migrates the local schema, installs the signal
handlers and runs the agent until SIGTERM / SIGINT. Errors are ``ConfigError`` /
``TransportError`` for the CLI to print.
"""

from __future__ import annotations

import signal
from typing import Any

from edgecloud.core.errors import ConfigError, TransportError
from edgecloud.edge.settings import EdgeSettings


def main(settings: EdgeSettings) -> None:
    from edgecloud.edge.agent import Agent
    from edgecloud.edge.migrations import migrate

    if settings.migrate:
        from sqlalchemy.exc import OperationalError

        try:
            migrate(settings.database_url)
        except OperationalError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"local database unreachable: {first}") from exc
    agent = Agent(settings, tune_gc=True)

    def _stop(_signum: int, _frame: Any) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.run()
    except (ConfigError, TransportError):
        if not agent.stopping.is_set():
            raise
