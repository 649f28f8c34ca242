"""The cloud API's one settings tree: every registry / rollout engine field read from the
environment by ``CloudSettings`` reaches the models runtime that the API's lifespan builds, and
the registry's config class reads nothing from the environment on its own (issue 17 move 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from edgecloud.cloud.api import create_app
from edgecloud.cloud.registry.settings import RegistryFields, RegistrySettings
from edgecloud.cloud.registry.tables import OperatorKey
from edgecloud.cloud.settings import CloudSettings
from edgecloud.core.signing import generate_key, public_key_b64


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("EDGECLOUD_"):
            monkeypatch.delenv(name)


def _env(tmp_path: Path) -> dict[str, tuple[str, object]]:
    """field -> (environment value, parsed value): distinctive, none of them a default."""
    key = public_key_b64(generate_key().public_key())
    return {
        "registry_dir": (str(tmp_path / "reg-q"), tmp_path / "reg-q"),
        "registry_max_bundle_bytes": ("123456", 123456),
        "registry_max_files": ("17", 17),
        "operator_public_keys": (key, key),
        "rollout_tick_s": ("0.25", 0.25),
        "rollout_engine": ("false", False),
        "node_scan_s": ("7.5", 7.5),
    }


@pytest.mark.usefixtures("clean_env")
def test_every_registry_field_reaches_the_models_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _env(tmp_path)
    assert set(values) == set(RegistryFields.model_fields), "a new field needs a value here"
    for field, (raw, _) in values.items():
        monkeypatch.setenv("EDGECLOUD_" + field.upper(), raw)
    settings = CloudSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app = create_app(settings)
    with TestClient(app):
        rt = app.state.models
        for field, (_, want) in values.items():
            assert getattr(rt.settings, field) == want, field
        assert rt.store.root == tmp_path / "reg-q"
        assert rt.task is None  # rollout_engine=false: this API process drives no rollouts
        with Session(rt.engine) as session:  # the key of the tree is trusted at start
            keys = [k.public_key for k in session.exec(select(OperatorKey)).all()]
        assert keys == [values["operator_public_keys"][1]]


@pytest.mark.usefixtures("clean_env")
def test_registry_settings_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLOUD_ROLLOUT_TICK_S", "3")
    monkeypatch.setenv("EDGECLOUD_REGISTRY_MAX_FILES", "9")
    assert RegistrySettings().rollout_tick_s == 0.5
    assert (
        RegistrySettings().registry_max_files
        == RegistryFields.model_fields["registry_max_files"].default
    )
    tree = CloudSettings().registry_settings()
    assert (tree.rollout_tick_s, tree.registry_max_files) == (3.0, 9)
