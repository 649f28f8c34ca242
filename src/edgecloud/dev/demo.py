"""``edgecloud dev up --demo``: the guided run on top of a started stack.

Today the demo brings up the whole stack (``dev up`` has done that before it is called) and
prints what runs where plus the dashboard URL. Simulated devices (``edgecloud simulate``) and a
staged model rollout (``edgecloud rollout start``) join this function when those commands
exist; ``run_demo`` is the one place to add them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgecloud.dev.control import StackConfig, status

Echo = Callable[[str], None]


def run_demo(config: StackConfig, echo: Echo) -> dict[str, Any]:
    """Summarise the running stack for a person; returns the ``dev status`` object."""
    summary = status(config)
    running = sorted(name for name, pid in summary["processes"].items() if pid is not None)
    stopped = sorted(name for name, pid in summary["processes"].items() if pid is None)
    echo("edgecloud demo")
    echo(f"  running:  {', '.join(running) or 'nothing'}")
    if stopped:
        echo(f"  not running (their commands are not available yet): {', '.join(stopped)}")
    echo(
        f"  devices publish to {summary['mqtt_url']} as {summary['device_credentials']['username']}"
    )
    echo("  device simulation and the model rollout are not part of the demo yet;")
    echo("  this run shows the stack they will use.")
    echo(f"  dashboard: {summary['cloud_api_url']}/")
    return summary
