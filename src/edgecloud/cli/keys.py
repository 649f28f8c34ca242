"""``edgecloud keys``: operator ed25519 signing keys for model bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecloud.cli._common import fail

app = typer.Typer(help="Operator ed25519 signing keys.", no_args_is_help=True)

DEFAULT_KEY_DIR = Path("~/.config/edgecloud/keys")


@app.command("gen")
def gen(
    out: Annotated[
        Path, typer.Option("--out", help="folder for NAME.key (PEM, 0600) and NAME.pub")
    ] = DEFAULT_KEY_DIR,
    name: Annotated[str, typer.Option(help="file name stem")] = "operator",
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing key")] = False,
) -> None:
    """Generate an operator signing key pair.

    The private key signs bundles (``edgecloud model push``); give the public key (the .pub
    file path or its base64 text) to edge nodes in EDGECLOUD_OPERATOR_PUBLIC_KEYS.
    """
    from edgecloud.core.signing import key_id, load_private_key, write_keypair

    try:
        priv, pub = write_keypair(out.expanduser(), name, overwrite=force)
    except FileExistsError as exc:
        fail(f"{exc} (use --force)")
    key = load_private_key(priv)
    typer.echo(f"private key: {priv}  (keep it secret)")
    typer.echo(f"public key:  {pub}")
    typer.echo(f"key id:      {key_id(key.public_key())}")
    typer.echo(f"trust it on edge nodes: EDGECLOUD_OPERATOR_PUBLIC_KEYS={pub.read_text().strip()}")
