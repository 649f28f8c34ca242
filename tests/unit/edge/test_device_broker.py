"""The device agent's broker side without a broker: the plan (what to add, change, remove),
the password file (hashes only, other accounts kept) and the order of the plugin commands
(a removed device is disabled before anything else changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgecloud.core.errors import TransportError
from edgecloud.edge.device_broker import Device, MosquittoDevices, plan


class Recorder:
    """An in-memory plugin: answers every command, records them in order."""

    def __init__(self, errors: dict[str, str] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.errors = errors or {}

    def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent.extend(commands)
        return [
            {
                "command": c["command"],
                **({"error": self.errors[c["command"]]} if c["command"] in self.errors else {}),
            }
            for c in commands
        ]


def _pw(device_id: str, h: str = "$7$101$c2FsdA==$aGFzaA==") -> Device:
    return Device(device_id, "password", h)


def test_plan_adds_changes_and_removes() -> None:
    applied = {"a": _pw("a"), "b": _pw("b"), "c": _pw("c")}
    p = plan(applied, [_pw("a"), _pw("b", "$7$101$other$x"), _pw("d")])
    assert ([d.device_id for d in p.add], [d.device_id for d in p.change], p.remove) == (
        ["d"],
        ["b"],
        ["c"],
    )
    assert plan(applied, applied.values()).empty


def test_apply_writes_hashes_keeps_other_accounts_and_disables_first(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("admin:$7$101$YQ==$Yg==\nold-dev:$7$101$eA==$eQ==\n")
    passwd.chmod(0o640)
    control = Recorder()
    broker = MosquittoDevices(control, passwd, None)
    wanted = {"new-dev": _pw("new-dev"), "cam": Device("cam", "cert", None, "ab" * 32)}
    p = plan({"old-dev": _pw("old-dev")}, wanted.values())
    broker.apply(p, wanted, {"old-dev"})
    lines = passwd.read_text().splitlines()
    assert lines == ["admin:$7$101$YQ==$Yg==", "new-dev:$7$101$c2FsdA==$aGFzaA=="]
    assert passwd.stat().st_mode & 0o777 == 0o640  # the broker's file keeps its mode
    order = [(c["command"], c.get("username") or c.get("rolename")) for c in control.sent]
    assert order[0] == ("disableClient", "old-dev")
    assert ("deleteClient", "old-dev") in order and ("deleteRole", "device-old-dev") in order
    created = [c for c in control.sent if c["command"] == "createClient"]
    assert [(c["username"], c["clientid"]) for c in created] == [
        ("cam", "cam"),
        ("new-dev", "new-dev"),
    ]
    assert all("password" not in c for c in control.sent)  # the plugin never gets a password
    roles = [c for c in control.sent if c["command"] == "createRole"]
    assert roles[1]["acls"] == [
        {
            "acltype": "publishClientSend",
            "topic": "devices/new-dev/telemetry",
            "priority": 0,
            "allow": True,
        }
    ]


def test_plugin_errors_other_than_already_exists_fail(tmp_path: Path) -> None:
    wanted = {"d": _pw("d")}
    ok = MosquittoDevices(Recorder({"createRole": "Role already exists"}), tmp_path / "p", None)
    ok.apply(plan({}, wanted.values()), wanted, set())  # re-applying what the broker has
    bad = MosquittoDevices(Recorder({"createClient": "Internal error"}), tmp_path / "p", None)
    with pytest.raises(TransportError, match="Internal error"):
        bad.apply(plan({}, wanted.values()), wanted, set())
