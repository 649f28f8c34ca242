"""The stack's Postgres roles (issue 20, finding 4) on the real test Postgres: the migrator owns
the tables, each service reads and writes rows of its own database only, no DDL, and a table a
later migration adds is covered without a grant naming it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from edgecloud.cloud.migrations import migrate as migrate_cloud
from edgecloud.dev import postgres, roles
from edgecloud.dev.stack import Infra
from edgecloud.edge.migrations import migrate as migrate_edge


@pytest.fixture
def dbs(stack: Infra) -> Iterator[tuple[str, str, str]]:
    tag = uuid.uuid4().hex[:8]
    cloud, node_db, node = f"t_cloud_{tag}", f"t_node_{tag}", f"edge-{tag}"
    stack.create_database(cloud)
    stack.create_database(node_db)
    yield cloud, node_db, node
    stack.drop_database(cloud)
    stack.drop_database(node_db)
    with psycopg.connect(postgres.libpq_url(stack.pg_admin_url), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{roles.node_role(node)}"')


def _connect(stack: Infra, role: str, db: str) -> psycopg.Connection[tuple[object, ...]]:
    url = roles.role_url(stack.pg_admin_url, role, db)
    return psycopg.connect(postgres.libpq_url(url), autocommit=True)


def test_each_service_has_only_its_rows(stack: Infra, dbs: tuple[str, str, str]) -> None:
    cloud, node_db, node = dbs
    admin = stack.pg_admin_url
    roles.apply(
        admin, {cloud: [roles.CLOUD_API, roles.CLOUD_WORKER], node_db: [roles.node_role(node)]}
    )
    migrate_cloud(roles.role_url(admin, roles.MIGRATOR, cloud))
    migrate_edge(roles.role_url(admin, roles.MIGRATOR, node_db))

    with _connect(stack, roles.MIGRATOR, node_db) as conn:
        owners = {r[0] for r in conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}  # fmt: skip
        assert owners == {roles.MIGRATOR}
        conn.execute("CREATE TABLE later_migration (id int)")  # a colleague's new table

    with _connect(stack, roles.node_role(node), node_db) as conn:
        super_ = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert super_.fetchone() == (False,)
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, reason, detail, payload) "
            "VALUES (now(), 't', 'r', 'd', '\\x00')"
        )
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)
        conn.execute("DELETE FROM dead_letters")
        conn.execute("INSERT INTO later_migration VALUES (1)")  # default privileges
        conn.execute("CREATE TEMP TABLE stage (LIKE readings)")  # the COPY staging table
        for ddl in ("CREATE TABLE mine (id int)", "DROP TABLE readings",
                    "TRUNCATE dead_letters", "ALTER TABLE readings ADD COLUMN x int"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        _connect(stack, roles.node_role(node), cloud)  # not another database

    with _connect(stack, roles.CLOUD_API, cloud) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE mine (id int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        _connect(stack, roles.CLOUD_WORKER, node_db)

    # idempotent: a second `dev up` applies the same again
    roles.apply(
        admin, {cloud: [roles.CLOUD_API, roles.CLOUD_WORKER], node_db: [roles.node_role(node)]}
    )
