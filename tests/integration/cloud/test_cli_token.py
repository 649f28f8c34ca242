"""``edgecloud token`` on a real Postgres through ``cloud/token_admin.py`` (the CLI opens no
database itself): create (migrating first), list, revoke, and the refusals."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from edgecloud.cli import app

runner = CliRunner()


def test_create_ls_revoke_and_refusals(pg_url: str) -> None:
    db = ["--database-url", pg_url]
    made = runner.invoke(app, ["token", "create", "--scope", "operate", "--name", "ci", *db])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("ecl_operate_")
    found = re.search(r"\(id ([0-9a-f-]{36})\)", made.output)
    assert found, made.output
    token_id = found.group(1)

    listed = runner.invoke(app, ["token", "ls", *db])
    assert listed.exit_code == 0 and "ci" in listed.output and "operate" in listed.output
    assert token not in listed.output  # only the hash is stored

    node = runner.invoke(app, ["token", "create", "--scope", "node", *db])
    assert node.exit_code == 1 and "node id" in node.output
    scope = runner.invoke(app, ["token", "create", "--scope", "root", *db])
    assert scope.exit_code == 1 and "--scope must be one of" in scope.output

    done = runner.invoke(app, ["token", "revoke", token_id, *db])
    assert done.exit_code == 0 and f"revoked {token_id}" in done.output
    again = runner.invoke(app, ["token", "revoke", token_id, *db])
    assert again.exit_code == 1 and "no active token" in again.output
    bad = runner.invoke(app, ["token", "revoke", "not-a-uuid", *db])
    assert bad.exit_code == 1 and "is not a token id" in bad.output
