"""The seed's Step 1 as a checked, repeatable step: database, owner role, least-privilege app role."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class BootstrapError(RuntimeError):
    pass


@dataclass
class BootstrapReport:
    database: str
    owner_role: str
    app_role: str
    schema: str
    steps: list[str] = field(default_factory=list)
    generated_passwords: dict[str, str] = field(default_factory=dict)

    def url_for(self, superuser_url: str, role: str) -> str:
        password = self.generated_passwords.get(role)
        url = make_url(superuser_url).set(drivername="postgresql", username=role, password=password,
                                          database=self.database)
        return url.render_as_string(hide_password=password is None)


def check_identifier(value: str, what: str) -> str:
    if not IDENTIFIER.fullmatch(value or ""):
        raise BootstrapError(f"{what} must be a plain lower-case identifier (letters, digits, _), not {value!r}.")
    return value


def _connect(url: str):
    conn = psycopg2.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                            connect_timeout=10, application_name="lhb-review bootstrap")
    conn.autocommit = True
    return conn


def _ensure_role(cur, role: str, password: str | None, report: BootstrapReport) -> None:
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,))
    row = cur.fetchone()
    if row is None:
        if password is None:
            password = secrets.token_urlsafe(24)
            report.generated_passwords[role] = password
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %s")
                    .format(sql.Identifier(role)), (password,))
        report.steps.append(f"created role {role}")
        return
    if row[0]:
        raise BootstrapError(f"Role {role} exists and is a superuser; choose another name for a least-privilege role.")
    if password is not None:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (password,))
        report.steps.append(f"role {role} exists; password updated")
    else:
        report.steps.append(f"role {role} exists; password unchanged")


def bootstrap(superuser_url: str, *, database: str, owner_role: str, app_role: str, schema: str = "public",
              owner_password: str | None = None, app_password: str | None = None) -> BootstrapReport:
    """Create (or bring up to date) the database, its owner role and the application role.

    The owner owns the database and the schema and runs migrations (DDL). The application role may
    connect, use the schema, and read and write rows (SELECT, INSERT, UPDATE, DELETE; sequences), on the
    tables that exist now and, through default privileges, on those the owner creates later. It cannot
    create, alter, drop or truncate anything, nor disable triggers. Running it again changes nothing
    that is already right; passwords of existing roles change only when given.
    """
    for value, what in ((database, "database"), (owner_role, "owner role"), (app_role, "app role"),
                        (schema, "schema")):
        check_identifier(value, what)
    if owner_role == app_role:
        raise BootstrapError("The owner role and the application role must differ.")
    report = BootstrapReport(database, owner_role, app_role, schema)
    db, owner, app, nsp = (sql.Identifier(x) for x in (database, owner_role, app_role, schema))

    conn = _connect(superuser_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            if not cur.fetchone()[0]:
                raise BootstrapError("The bootstrap URL must be a superuser (or a role with CREATEROLE and CREATEDB).")
            _ensure_role(cur, owner_role, owner_password, report)
            _ensure_role(cur, app_role, app_password, report)
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,))
            row = cur.fetchone()
            if row is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, owner))
                report.steps.append(f"created database {database} owned by {owner_role}")
            elif row[0] != owner_role:
                cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, owner))
                report.steps.append(f"database {database} exists; owner changed from {row[0]} to {owner_role}")
            else:
                report.steps.append(f"database {database} exists, owned by {owner_role}")
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app))
    finally:
        conn.close()

    conn = _connect(make_url(superuser_url).set(database=database).render_as_string(hide_password=False))
    try:
        with conn.cursor() as cur:
            if schema == "public":
                cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
            else:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(nsp, owner))
                cur.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(nsp, owner))
                for role in (owner, app):
                    cur.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(role, db, nsp))
            cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(nsp))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(nsp, app))
            cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(nsp, app))
            cur.execute(sql.SQL(f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {{}} TO {{}}").format(nsp, app))
            cur.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(nsp, app))
            cur.execute(sql.SQL(f"ALTER DEFAULT PRIVILEGES FOR ROLE {{}} IN SCHEMA {{}} GRANT {APP_TABLE_PRIVILEGES} "
                                f"ON TABLES TO {{}}").format(owner, nsp, app))
            cur.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT "
                                "ON SEQUENCES TO {}").format(owner, nsp, app))
            # The migration history is the owner's business: the app may read it (/readyz), not write it.
            cur.execute("SELECT to_regclass(%s)", (f"{schema}.alembic_version",))
            if cur.fetchone()[0] is not None:
                cur.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {}.alembic_version FROM {}").format(nsp, app))
            cur.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = %s AND tableowner <> %s",
                (schema, owner_role),
            )
            foreign = cur.fetchall()
            if foreign:
                report.steps.append("warning: tables not owned by the owner role: "
                                    + ", ".join(f"{t} ({o})" for t, o in foreign))
            report.steps.append(f"schema {schema}: owned by {owner_role}; {app_role} may use it and "
                                f"{APP_TABLE_PRIVILEGES} its tables (now and later)")
    finally:
        conn.close()
    return report
