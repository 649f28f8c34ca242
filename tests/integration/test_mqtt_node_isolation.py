"""Node isolation on MQTT (issue 16): the local stack gives each node its own accounts
(``agent@NODE``, ``bridge@NODE``), limited to ``edgecloud/{own node}/events/#``; with
``mosquitto_pub`` / ``mosquitto_sub`` as the nodes' clients (not project code).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from edgecloud.dev.mosquitto import node_account
from edgecloud.dev.stack import Infra


def _pub(stack: Infra, account: str, topic: str) -> subprocess.CompletedProcess[str]:
    user, pw = stack.mqtt_account(account)
    return subprocess.run(
        ["mosquitto_pub", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port), "-V", "5",
         "-q", "1", "-u", user, "-P", pw, "-t", topic, "-m", f'{{"from": "{account}"}}'],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _sub(stack: Infra, account: str, topic: str, count: int, wait_s: int) -> subprocess.Popen[str]:
    user, pw = stack.mqtt_account(account)
    return subprocess.Popen(
        ["mosquitto_sub", "-h", stack.mqtt_host, "-p", str(stack.mqtt_port), "-V", "5",
         "-q", "1", "-u", user, "-P", pw, "-t", topic, "-v", "-C", str(count),
         "-W", str(wait_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_node_cannot_publish_another_nodes_events(stack: Infra, unique_id: str) -> None:
    if not stack.mqtt_managed:
        pytest.skip("external broker: accounts are not managed here")
    a, b = f"na-{unique_id}", f"nb-{unique_id}"
    stack.add_node_accounts(a)
    stack.add_node_accounts(b)
    agent_a, agent_b = node_account("agent", a), node_account("agent", b)
    # everything on the events topics, as the admin sees it, and as node B's bridge sees it
    watch = _sub(stack, "admin", "edgecloud/+/events/#", 2, 15)
    bridge_b = _sub(stack, node_account("bridge", b), "edgecloud/+/events/#", 2, 15)
    time.sleep(1.0)  # mosquitto_sub has no "subscribed" signal
    forged = _pub(stack, agent_a, f"edgecloud/{b}/events/reading")
    assert "Not authorized" in forged.stderr
    assert "Not authorized" not in _pub(stack, agent_a, f"edgecloud/{a}/events/reading").stderr
    assert "Not authorized" not in _pub(stack, agent_b, f"edgecloud/{b}/events/reading").stderr
    # a node's agent writes no device telemetry and its bridge publishes nothing
    assert "Not authorized" in _pub(stack, agent_a, "devices/x/telemetry").stderr
    bridge_pub = _pub(stack, node_account("bridge", a), f"edgecloud/{a}/events/reading")
    assert "Not authorized" in bridge_pub.stderr
    seen, _ = watch.communicate(timeout=30)
    assert sorted(seen.splitlines()) == [
        f'edgecloud/{a}/events/reading {{"from": "{agent_a}"}}',
        f'edgecloud/{b}/events/reading {{"from": "{agent_b}"}}',
    ]
    # node B's bridge gets only node B's event (it waits for 2 and times out with 1)
    got, _ = bridge_b.communicate(timeout=30)
    assert got.splitlines() == [f'edgecloud/{b}/events/reading {{"from": "{agent_b}"}}']


def test_the_dynsec_account_publishes_no_telemetry_or_events(stack: Infra) -> None:
    if not stack.mqtt_managed:
        pytest.skip("external broker: accounts are not managed here")
    assert "Not authorized" in _pub(stack, "dynsec", "devices/x/telemetry").stderr
    assert "Not authorized" in _pub(stack, "dynsec", "edgecloud/x/events/reading").stderr
