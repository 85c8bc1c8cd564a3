"""Private PostgreSQL servers on loopback ports for the scaling tests and bench/scaled.py: a primary and its
streaming standby (pg_basebackup -R), and PgBouncer in transaction mode in front of the primary."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

DATABASE = "lhb_replicas"


def pg_bin_dir() -> Path | None:
    """The PostgreSQL server binaries: PG_BIN_DIR, pg_config --bindir, or Debian's newest version."""
    candidates = [os.environ.get("PG_BIN_DIR")]
    if shutil.which("pg_config"):
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "pg_basebackup").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the 'postgres' system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root needs a 'postgres' system user to run the test servers") from exc
    return "postgres"


class Cluster:
    """One data directory and its postmaster on 127.0.0.1:port."""

    def __init__(self, bin_dir: Path, pgdata: Path, port: int, user: str | None):
        self.bin_dir, self.pgdata, self.port, self.user = bin_dir, pgdata, port, user

    def run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bin_dir / tool), *args], check=True, user=self.user, capture_output=True,
                       timeout=120, cwd="/")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = DATABASE):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)
        conn.autocommit = True
        return conn

    def query(self, sql: str, database: str = DATABASE):
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()[0] if cur.description else None
        finally:
            conn.close()


class ReplicatedServers:
    """A primary (wal_level=replica) with the database ``DATABASE``, and a hot standby streaming from it."""

    def __init__(self, bin_dir: Path, *, standby: bool = True):
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="lhb-replica-pg-"))
        if self.user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, self.user)
        self.primary = Cluster(bin_dir, self.root / "primary", free_port(), self.user)
        self.primary.run("initdb", "-D", str(self.primary.pgdata), "-U", "postgres", "--auth=trust",
                         "--encoding=UTF8", "--no-sync")
        self._configure(self.primary, wal_level="replica", max_wal_senders=4, hot_standby="on")
        with open(self.primary.pgdata / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self.primary.start()
        self.primary.query(f"CREATE DATABASE {DATABASE}", database="postgres")

        self.standby = None
        if standby:
            self.add_standby(bin_dir)

    def add_standby(self, bin_dir: Path) -> None:
        self.standby = Cluster(bin_dir, self.root / "standby", free_port(), self.user)
        self.standby.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                         "-D", str(self.standby.pgdata), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        self._configure(self.standby)
        self.standby.start()
        self.wait_for_replay()

    def _configure(self, cluster: Cluster, **settings) -> None:
        settings = {"listen_addresses": "'127.0.0.1'", "port": cluster.port,
                    "unix_socket_directories": f"'{cluster.pgdata}'", "fsync": "off", **settings}
        with open(cluster.pgdata / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = self.primary.query("SELECT pg_current_wal_insert_lsn()::text")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.standby.query(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
                    return
            except psycopg2.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {target} in {timeout}s")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        self.standby.query("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.standby.query("SELECT pg_wal_replay_resume()")

    def close(self) -> None:
        for cluster in (self.standby, self.primary):
            if cluster is None:
                continue
            try:
                cluster.stop()
            except Exception:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """Debian's pgbouncer in transaction pooling mode on a free loopback port, in front of one database."""

    def __init__(self, binary: str, target_port: int, database: str = DATABASE, pool_size: int = 4):
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="lhb-pgbouncer-"))
        self.port = free_port()
        users = self.root / "userlist.txt"
        users.write_text('"postgres" ""\n')
        config = self.root / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"{database} = host=127.0.0.1 port={target_port} dbname={database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 200\n"
            # The app sets statement_timeout, lock_timeout and search_path as startup options.
            "ignore_startup_parameters = extra_float_digits,options,application_name\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        if self.user:
            os.chmod(self.root, 0o755)
            for path in (self.root, users, config):
                shutil.chown(path, self.user)
        self.process = subprocess.Popen([binary, str(config)], user=self.user, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, cwd="/")
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "pgbouncer.log")
                    raise RuntimeError("pgbouncer did not start: " + (log.read_text() if log.exists() else ""))
                time.sleep(0.05)

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
