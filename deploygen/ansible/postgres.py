"""The SQL site.yml runs for a site's database: its timeouts, and the query that tells what is
already there (the role, the database, the settings), so that a second run changes nothing.

`ALTER ROLE ... IN DATABASE ... SET` is what postgres.sql holds (render.site's statements);
community.postgresql's postgresql_query would run it on every deploy and report a change,
so a query of pg_db_role_setting guards it: PostgreSQL keeps each setting there as
`name=value`, the value as the statement wrote it.
"""

from __future__ import annotations

from deploygen.ansible.yaml_text import Unsafe
from deploygen.render.install import InstallPlan
from deploygen.render.site import postgres_statements


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _array(items: list[str]) -> str:
    return f"ARRAY[{', '.join(items)}]::text[]" if items else "ARRAY[]::text[]"


def state_query(sql: dict) -> str:
    """One row of what the server holds: `role_ok` (the role exists and may log in),
    `database_ok` (the database exists, owned by the role) and `settings_ok` (every SET is in
    pg_db_role_setting as postgres.sql writes it, no RESET setting is there). The role and the
    database are the query's named arguments, `%(role)s` and `%(database)s`."""
    wanted = _array([f"{_literal(name + '=')} || {literal}" for name, literal, _ in sql["statements"]])
    reset = _array([_literal(name) for name in sql["resets"]])
    # A '%' of deploygen's own text would read as a placeholder: psycopg reads `%%` as one.
    settings = (f"coalesce(s.setconfig, '{{}}'::text[]) @> {wanted}\n"
                "       AND NOT EXISTS (SELECT FROM unnest(s.setconfig) AS c(setting)\n"
                f"                       WHERE split_part(c.setting, '=', 1) = ANY ({reset}))").replace("%", "%%")
    return (
        "SELECT coalesce(r.rolcanlogin, false) AS role_ok,\n"
        "       coalesce(d.datdba = r.oid, false) AS database_ok,\n"
        f"       r.oid IS NOT NULL AND d.oid IS NOT NULL AND {settings} AS settings_ok\n"
        "FROM (SELECT) AS one\n"
        "LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = %(role)s\n"
        "LEFT JOIN pg_catalog.pg_database AS d ON d.datname = %(database)s\n"
        "LEFT JOIN pg_catalog.pg_db_role_setting AS s ON s.setrole = r.oid AND s.setdatabase = d.oid"
    )


def settings_statements(sql: dict) -> list[str]:
    """The statements of postgres.sql, one per setting (postgresql_query runs them in one transaction)."""
    where = f"ALTER ROLE {sql['role']} IN DATABASE {sql['database']}"
    return ([f"{where} SET {name} = {literal}" for name, literal, _ in sql["statements"]]
            + [f"{where} RESET {name}" for name in sql["resets"]])


def database_entry(context, plan: InstallPlan) -> dict | None:
    """What site.yml's PostgreSQL tasks need of one site, or None: the site has no database."""
    sql = postgres_statements(context)
    if sql is None or plan.database is None or plan.role is None:
        return None
    entry: dict = {
        "site": Unsafe(plan.site),
        "name": Unsafe(plan.database),
        "role": Unsafe(plan.role),
        # local: this host's own server, reached over its socket as the postgres OS user;
        # else login_host, as role postgres (deploygen_postgres_login_* change both).
        "local": plan.postgres_local,
    }
    host = plan.postgres_host or ""
    if not plan.postgres_local:
        entry["login_host"] = Unsafe(host)
    elif host.startswith("/"):
        entry["login_unix_socket"] = Unsafe(host)
    if plan.postgres_port is not None:
        entry["port"] = plan.postgres_port
    entry["timeouts_sql"] = Unsafe(plan.timeouts_sql or "")
    entry["state_query"] = Unsafe(state_query(sql))
    entry["settings"] = [Unsafe(statement) for statement in settings_statements(sql)]
    return entry
