"""The local broker's generated accounts (issue 16): node blocks, derived passwords, no
ACL-file grant for registered devices, and which node owns each simulated device."""

from __future__ import annotations

from pathlib import Path

from edgecloud.core.topics import device_shard
from edgecloud.dev.base import Ports
from edgecloud.dev.devices import owners
from edgecloud.dev.mosquitto import MosquittoService, node_account


def _broker(tmp_path: Path) -> MosquittoService:
    return MosquittoService(tmp_path / "state", Ports(1, 2, 3, 4))


def test_node_blocks_and_hand_added_devices_in_the_acl(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.home.mkdir(parents=True)
    broker.nodes_file.write_text('["edge-2", "edge-1"]')
    broker.users_file.write_text('["dev-x", "dapr-edge"]')
    broker._write_acl()
    acl = (broker.home / "acl").read_text()
    lines = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    block = lines.index("user agent@edge-1")
    assert lines[block : block + 6] == [
        "user agent@edge-1",
        "topic read devices/+/telemetry",
        "topic write edgecloud/edge-1/events/#",
        "user bridge@edge-1",
        "topic read edgecloud/edge-1/events/#",
        "user agent@edge-2",
    ]
    assert "topic write devices/dev-x/telemetry" in lines
    assert lines.count("user dapr-edge") == 1  # named in the template: no second block
    assert not [ln for ln in lines if ln.startswith("pattern")]  # nothing for every username
    dynsec = lines.index("user dynsec")
    assert lines[dynsec + 1 : dynsec + 3] == [
        "topic readwrite $CONTROL/dynamic-security/#",
        "user simulator",
    ]


def test_node_account_passwords_are_derived_and_stable(tmp_path: Path) -> None:
    a, b = _broker(tmp_path), _broker(tmp_path)
    name = node_account("agent", "edge-1")
    assert name == "agent@edge-1"
    assert a.account(name) == b.account(name)
    assert a.account(name)[1] != a.account(node_account("agent", "edge-2"))[1]
    assert a.account("admin")[1] == a.secrets["mqtt"]["admin"]
    other = MosquittoService(tmp_path / "other", Ports(1, 2, 3, 4))
    assert other.account(name)[1] != a.account(name)[1]  # from each stack's own secret


def test_simulated_devices_go_to_the_node_whose_shard_owns_them() -> None:
    nodes = ["edge-1", "edge-2", "edge-3"]
    owner = owners("sim", 30, nodes)
    assert len(owner) == 30 and set(owner.values()) == set(nodes)
    for device, node in owner.items():
        assert nodes[device_shard(device, 3) - 1] == node
    assert set(owners("sim", 4, ["edge-1"]).values()) == {"edge-1"}
