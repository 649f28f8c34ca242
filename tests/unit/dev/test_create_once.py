"""``create_once``: the state dir's secret files are written once, mode 0600, first one wins."""

from __future__ import annotations

import stat
from pathlib import Path

from edgecloud.dev.base import create_once, load_secrets
from edgecloud.dev.kafka_auth import PRINCIPALS, Credentials


def test_first_write_wins_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    create_once(path, "first")
    create_once(path, "second")
    assert path.read_text() == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pw"]  # no temporary file left


def test_stack_secrets_are_made_once(tmp_path: Path) -> None:
    first = load_secrets(tmp_path)
    assert load_secrets(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_kafka_passwords_are_made_once_per_principal(tmp_path: Path) -> None:
    creds = Credentials(tmp_path)
    creds.ensure()
    first = {name: creds.password(name) for name in PRINCIPALS}
    Credentials(tmp_path).ensure()
    assert {name: creds.password(name) for name in PRINCIPALS} == first
    assert len(set(first.values())) == len(PRINCIPALS)  # one password each
