"""``edgecloud ca init``: the fleet CA that signs device certificates (issue 16).

It lives outside the repository: ``--dir`` / ``EDGECLOUD_CA_DIR``, by default
``~/.config/edgecloud/ca`` (``ca.key`` 0600, ``ca.pem``). The dev stack keeps its own in its
state dir. The broker's TLS listener trusts ``ca.pem``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgecloud.cli._common import fail
from edgecloud.core.errors import ConfigError

app = typer.Typer(help="The fleet CA (device certificates).", no_args_is_help=True)
DEFAULT_CA_DIR = "~/.config/edgecloud/ca"
CaDir = Annotated[
    str, typer.Option("--ca-dir", envvar="EDGECLOUD_CA_DIR", help="folder of ca.key and ca.pem")
]


def ca_dir(value: str) -> Path:
    return Path(value or os.environ.get("EDGECLOUD_CA_DIR") or DEFAULT_CA_DIR).expanduser()


@app.command("init")
def init(
    ca_dir_opt: CaDir = DEFAULT_CA_DIR,
    name: Annotated[str, typer.Option(help="the CA certificate's CN")] = "edgecloud fleet CA",
    days: Annotated[int, typer.Option(min=1, max=36500, help="validity")] = 3650,
) -> None:
    """Create the CA (refuses to overwrite one); prints the path of its certificate."""
    from edgecloud.core import pki

    folder = ca_dir(ca_dir_opt)
    try:
        pki.init_ca(folder, name, days)
    except ConfigError as exc:
        fail(str(exc))
    typer.echo(f"CA created in {folder} (keep ca.key secret; brokers trust ca.pem)", err=True)
    typer.echo(str(folder / pki.CA_CERT))
