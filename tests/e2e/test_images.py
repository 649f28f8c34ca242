"""The images of ``make images`` and the devcontainer, on the project's own dockerd: every one
built FROM the debootstrap base (its first layer), the edgecloud image runs ``--help`` as a
non-root user, no image carries a secret in its layers, and the devcontainer builds and has
what its postCreateCommand (``make install``) needs."""

from __future__ import annotations

import json
import subprocess

import pytest
from docker_engine import ROOT, SCRIPTS, DockerEngine

BASE = "edgecloud-base:bookworm"
IMAGES = [
    "edgecloud:0.1.0",
    "edgecloud-postgres:15",
    "edgecloud-mosquitto:2",
    "edgecloud-kafka:4.1.0",
    "edgecloud-daprd:1.14.0",
]
NON_ROOT = {
    "edgecloud:0.1.0": "10001",
    "edgecloud-postgres:15": "postgres",
    "edgecloud-mosquitto:2": "mosquitto",
    "edgecloud-kafka:4.1.0": "kafka",
    "edgecloud-daprd:1.14.0": "65532",
}


def _inspect(engine: DockerEngine, image: str) -> dict[str, object]:
    data = json.loads(engine.run("image", "inspect", image).stdout)
    assert len(data) == 1
    found: dict[str, object] = data[0]
    return found


def _layers(engine: DockerEngine, image: str) -> list[str]:
    rootfs = _inspect(engine, image)["RootFS"]
    assert isinstance(rootfs, dict)
    return list(rootfs["Layers"])


@pytest.mark.parametrize("image", IMAGES)
def test_built_from_the_project_base_as_a_non_root_user(
    docker_engine: DockerEngine, image: str
) -> None:
    (base_layer,) = _layers(docker_engine, BASE)
    assert _layers(docker_engine, image)[0] == base_layer, f"{image}: not FROM {BASE}"
    config = _inspect(docker_engine, image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == NON_ROOT[image]
    uid = docker_engine.run("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert uid != "0", f"{image} runs as root"


def test_edgecloud_help_lists_every_role(docker_engine: DockerEngine) -> None:
    out = docker_engine.run("run", "--rm", "edgecloud:0.1.0", "--help").stdout
    for group in ("edge", "bridge", "cloud", "dev", "model", "token"):
        assert f" {group} " in out, f"{group} missing from the image's --help"


@pytest.mark.parametrize("image", IMAGES)
def test_no_secrets_in_layers(docker_engine: DockerEngine, image: str) -> None:
    history = docker_engine.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    config = _inspect(docker_engine, image)["Config"]
    assert isinstance(config, dict)
    text = history.stdout + "\n".join(config.get("Env") or [])
    for word in ("PASSWORD=", "TOKEN=", "SECRET", "sasl.password", "BEGIN PRIVATE KEY"):
        assert word not in text, f"{image}: {word} in its history or environment"
    found = docker_engine.run(
        "run", "--rm", "--entrypoint", "find", image, "/opt", "/var/lib", "/etc",
        "(", "-name", "*.secrets.json", "-o", "-name", "*.key", "-o", "-name", "*.env",
        "-o", "-name", "secrets.json", ")", "-type", "f", check=False,
    )  # fmt: skip
    assert found.stdout.strip() == "", f"{image}: secret-looking files {found.stdout}"


@pytest.mark.slow
def test_devcontainer_builds_from_the_base(docker_engine: DockerEngine) -> None:
    spec = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert spec["postCreateCommand"] == "make install"
    assert spec["build"]["args"]["BASE"] == BASE
    assert spec["initializeCommand"] == "scripts/base-image.sh"
    built = subprocess.run(
        [str(SCRIPTS / "images.sh"), "devcontainer"], capture_output=True, text=True,
        check=False, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    image = "edgecloud-devcontainer:latest"
    (base_layer,) = _layers(docker_engine, BASE)
    assert _layers(docker_engine, image)[0] == base_layer
    script = "id -un; python3 --version; make --version | head -1; git --version; sudo -n true"
    out = docker_engine.run("run", "--rm", image, "bash", "-c", script + " && echo sudo-ok")
    lines = out.stdout.split("\n")
    assert lines[0] == "dev"
    assert lines[1].startswith("Python 3.11")
    assert lines[2].startswith("GNU Make")
    assert lines[3].startswith("git version")
    assert lines[4] == "sudo-ok", "make install needs sudo for install-system.sh"
