"""Postgres roles of the local stack: one per service, none a superuser (issue 20, finding 4).

- ``edgecloud_migrate`` owns every database of the stack and every table in it; ``dev up`` runs
  the migrations as this role before the apps start (they start with migrations off).
- ``edgecloud_cloud_api`` and ``edgecloud_cloud_worker``: the cloud database only;
  ``edgecloud_node_<id>``: its node's database only. Each may connect, make temporary tables
  (the COPY staging tables) and read and write rows (SELECT, INSERT, UPDATE, DELETE; sequences),
  nothing else: no DDL, no TRUNCATE, no other database (CONNECT is revoked from PUBLIC).

Grants are schema-wide (``ON ALL TABLES IN SCHEMA public``, re-applied at every ``dev up``) plus
``ALTER DEFAULT PRIVILEGES FOR ROLE edgecloud_migrate``, so a table a later migration adds is
covered without naming it. Passwords are derived from the stack's admin password (HMAC), so
every process of a state dir computes the same ones and nothing new is stored. The superuser
stays for the stack itself (creating databases, the test fixtures). With a bring-your-own
Postgres nothing is created: every service uses the given URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from edgecloud.dev import postgres

MIGRATOR = "edgecloud_migrate"
CLOUD_API = "edgecloud_cloud_api"
CLOUD_WORKER = "edgecloud_cloud_worker"
_ROWS = "SELECT, INSERT, UPDATE, DELETE"


def node_role(node_id: str) -> str:
    return "edgecloud_node_" + re.sub(r"[^a-z0-9_]", "_", node_id.lower())[:40]


def password(admin_url: str, role: str) -> str:
    secret = (make_url(admin_url).password or "").encode()
    digest = hmac.new(secret, role.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def role_url(admin_url: str, role: str, database: str) -> str:
    """``admin_url`` for ``role`` (its derived password) on ``database``."""
    url = make_url(postgres.database_url(admin_url, database))
    return url.set(username=role, password=password(admin_url, role)).render_as_string(
        hide_password=False
    )


def _ensure_role(cur: psycopg.Cursor[object], admin_url: str, role: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(
        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password(admin_url, role))
        )
    )


def database_url(admin_url: str | None, fallback: str, role: str, database: str) -> str:
    """The URL ``role`` uses for ``database``; ``fallback`` where the stack has no roles (a
    bring-your-own Postgres: ``admin_url`` None)."""
    return fallback if admin_url is None else role_url(admin_url, role, database)


def apply(admin_url: str, databases: dict[str, list[str]]) -> None:
    """Roles and grants: ``databases`` maps each database to the roles that use it."""
    with psycopg.connect(postgres.libpq_url(admin_url), autocommit=True) as conn:
        cur = conn.cursor()
        for role in {MIGRATOR, *(r for roles in databases.values() for r in roles)}:
            _ensure_role(cur, admin_url, role)
        for db in databases:
            cur.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(db), sql.Identifier(MIGRATOR)
                )
            )
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
    for db, roles in databases.items():
        with psycopg.connect(
            postgres.libpq_url(postgres.database_url(admin_url, db)), autocommit=True
        ) as conn:
            _grant(conn.cursor(), db, roles)


def _grant(cur: psycopg.Cursor[object], db: str, roles: list[str]) -> None:
    ident = sql.Identifier
    mig = ident(MIGRATOR)
    # tables made by the superuser before this existed (apps used to migrate): the migrator's
    cur.execute(
        "SELECT 'TABLE', tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tableowner <> %(m)s UNION ALL SELECT 'SEQUENCE', sequencename FROM pg_sequences "
        "WHERE schemaname = 'public' AND sequenceowner <> %(m)s UNION ALL "
        "SELECT 'VIEW', viewname FROM pg_views WHERE schemaname = 'public' AND viewowner <> %(m)s "
        "UNION ALL SELECT 'MATERIALIZED VIEW', matviewname FROM pg_matviews "
        "WHERE schemaname = 'public' AND matviewowner <> %(m)s UNION ALL "
        "SELECT 'TYPE', t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'c', 'd') AND t.typrelid = 0 "
        "AND pg_get_userbyid(t.typowner) <> %(m)s",
        {"m": MIGRATOR},
    )
    owned: list[tuple[str, str]] = [(str(row[0]), str(row[1])) for row in cur.fetchall()]  # type: ignore[index]
    for kind, name in owned:
        stmt = "ALTER " + kind + " public.{} OWNER TO {}"
        cur.execute(sql.SQL(stmt).format(ident(name), mig))
    for role in roles:
        r = ident(role)
        for stmt in (
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {r}",
            "GRANT USAGE ON SCHEMA public TO {r}",
            "GRANT " + _ROWS + " ON ALL TABLES IN SCHEMA public TO {r}",
            "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA public GRANT "
            + _ROWS
            + " ON TABLES TO {r}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {mig} IN SCHEMA public "
            "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
        ):
            cur.execute(sql.SQL(stmt).format(db=ident(db), r=r, mig=mig))
    cur.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(ident(db), mig))
